import { EventEmitter } from 'node:events';
import type { ScalingEvent } from '@keyflow/api';
import { QueryClient } from '@tanstack/react-query';
import { describe, expect, it } from 'vitest';
import { queryKeys } from '../../lib/api';
import { bindEventsToCache, scalingEventsWith } from '../../lib/liveCache';
import { checkpointName } from './checkpointName';
import {
  currentPhase,
  describeScaling,
  keyGroupOwners,
  operatorScaling,
  PHASE_LEGEND,
  resumedEventId,
  scalingOutcome,
  scalingPhases,
  sliderLimits,
  statusTone,
} from './scaling';

const JOB = '11111111-1111-4111-8111-111111111111';
const at = (ms: number) => new Date(Date.UTC(2026, 0, 1) + ms).toISOString();

const scaling = (id: number, extra: Partial<ScalingEvent> = {}): ScalingEvent => ({
  id,
  jobId: JOB,
  vertexId: 'count',
  chainVertices: ['count', 'sink'],
  fromParallelism: 1,
  toParallelism: 2,
  status: 'QUEUED',
  requestedAt: at(0),
  subtasksStartedAt: null,
  alignedAt: null,
  snapshottedAt: null,
  restoredAt: null,
  runningAt: null,
  checkpointId: null,
  checkpointNumber: null,
  keyGroupsMoved: 0,
  bytesMoved: 0,
  pauseMs: null,
  reason: null,
  resumesId: null,
  ...extra,
});

const aligned = scaling(1, { status: 'ALIGNING', subtasksStartedAt: at(40), alignedAt: at(95) });
const completed = scaling(1, {
  ...aligned,
  status: 'COMPLETED',
  restoredAt: at(120),
  snapshottedAt: at(180),
  runningAt: at(181),
  keyGroupsMoved: 64,
  bytesMoved: 4096,
  pauseMs: 86,
});

describe('how a rescale reads', () => {
  it.each([
    [scaling(1), '×1 → ×2 · queued', 'requested'],
    [scaling(1, { status: 'WAITING_FOR_SLOTS' }), '×1 → ×2 · waiting for free slots', 'requested'],
    [aligned, '×1 → ×2 · rolling out: barrier aligned', 'barrier aligned'],
    [completed, '×1 → ×2 · completed', 'running'],
    [scaling(1, { status: 'ROLLED_BACK', toParallelism: 8, reason: 'no free slots' }), '×1 → ×8 · rolled back', 'requested'],
    [scaling(1, { ...aligned, status: 'INTERRUPTED' }), '×1 → ×2 · interrupted by a recovery', 'barrier aligned'],
  ])('%#: %s', (e, text, phase) => {
    expect(describeScaling(e)).toBe(text);
    expect(currentPhase(e)).toBe(phase);
  });

  it('lists the six phases in order, each timed from the request, and the ones not reached as null', () => {
    expect(scalingPhases(aligned).map((p) => [p.label, p.sinceRequestMs])).toEqual([
      ['requested', 0],
      ['new subtasks started', 40],
      ['barrier aligned', 95],
      ['state restored', null],
      ['checkpoint completed', null],
      ['running', null],
    ]);
    expect(scalingPhases(completed).at(-1)).toEqual({ label: 'running', at: at(181), sinceRequestMs: 181 });
  });

  it('lists the reached phases in the order they happened, so no time runs backwards', () => {
    // The checkpoint completed before the last new owner had its state: the two swap places.
    const late = scaling(1, { ...completed, snapshottedAt: at(110), restoredAt: at(150) });
    expect(scalingPhases(late).map((p) => [p.label, p.sinceRequestMs])).toEqual([
      ['requested', 0],
      ['new subtasks started', 40],
      ['barrier aligned', 95],
      ['checkpoint completed', 110],
      ['state restored', 150],
      ['running', 181],
    ]);
    expect(currentPhase(scaling(1, { ...aligned, restoredAt: at(150), snapshottedAt: at(110) }))).toBe('state restored');
    // Another clock (a worker's) never puts a phase before the request.
    const skewed = scalingPhases(scaling(1, { ...completed, requestedAt: at(50), subtasksStartedAt: at(45) }));
    expect(skewed[0]).toMatchObject({ label: 'requested', sinceRequestMs: 0 });
    expect(skewed.map((p) => p.sinceRequestMs)).toEqual([...skewed.map((p) => p.sinceRequestMs)].sort((a, b) => a! - b!));
  });

  it('has no "new subtasks started" phase for a rescale down, which starts none', () => {
    const down = scaling(2, {
      fromParallelism: 2,
      toParallelism: 1,
      status: 'COMPLETED',
      alignedAt: at(10),
      restoredAt: at(20),
      snapshottedAt: at(30),
      runningAt: at(31),
    });
    expect(scalingPhases(down).map((p) => p.label)).toEqual(['requested', 'barrier aligned', 'state restored', 'checkpoint completed', 'running']);
    expect(scalingPhases(down).every((p) => p.at !== null)).toBe(true);
  });

  it('has a legend naming the same phases it lists', () => {
    expect(PHASE_LEGEND).toBe(
      scalingPhases(aligned)
        .map((p) => p.label)
        .join(' → '),
    );
  });

  it('tells an interrupted rescale from a failed one, and which one a new event resumes', () => {
    expect(['COMPLETED', 'INTERRUPTED', 'ROLLED_BACK', 'ALIGNING'].map((s) => statusTone(s as ScalingEvent['status']))).toEqual([
      'ok',
      'warn',
      'bad',
      'busy',
    ]);
    expect(resumedEventId({ resumesId: 12 })).toBe(12);
    expect(resumedEventId({ resumesId: null })).toBeUndefined();
  });

  it('words how a rescale ended without saying it twice', () => {
    expect(
      scalingOutcome({ status: 'ROLLED_BACK', reason: 'rolled back: waited 30000 ms for 2 free worker slots; 0 of the new subtasks started' }),
    ).toBe('rolled back: waited 30000 ms for 2 free worker slots; 0 of the new subtasks started');
    expect(scalingOutcome({ status: 'INTERRUPTED', reason: 'the job recovered during the pre-copy' })).toBe(
      'interrupted by a recovery: the job recovered during the pre-copy',
    );
    expect(scalingOutcome({ status: 'FAILED', reason: null })).toBe('failed');
  });
});

describe('what an operator slider shows', () => {
  const queued = scaling(2, { vertexId: 'map', chainVertices: ['map'], toParallelism: 3 });

  it('finds the oldest rescale under way of the operator or of its forward chain, and counts the queue', () => {
    expect(operatorScaling([queued, aligned], 'sink')).toEqual({ mine: aligned, inFlight: 2, lastProblem: undefined });
    expect(operatorScaling([queued, aligned], 'map').mine).toBe(queued);
    expect(operatorScaling([queued, aligned], 'source')).toEqual({ mine: undefined, inFlight: 2, lastProblem: undefined });
  });

  it('keeps showing the last rescale that did not complete, until another one completes or starts', () => {
    const rolledBack = scaling(3, { status: 'ROLLED_BACK', reason: 'no free slots' });
    expect(operatorScaling([rolledBack, completed], 'count').lastProblem).toBe(rolledBack);
    expect(operatorScaling([scaling(4, { status: 'COMPLETED' }), rolledBack], 'count').lastProblem).toBeUndefined();
    expect(operatorScaling([scaling(4), rolledBack], 'count').lastProblem).toBeUndefined();
  });

  it('shows an interrupted rescale until the event that resumes it is queued, which it then follows', () => {
    const interrupted = scaling(3, {
      status: 'INTERRUPTED',
      reason: 'the job recovered during the pre-copy; the job goes on to ×2 once it runs again',
    });
    expect(operatorScaling([interrupted, completed], 'count')).toEqual({ mine: undefined, inFlight: 0, lastProblem: interrupted });
    const resumed = scaling(4, { reason: 'resumes scaling event 3, which a recovery interrupted: count runs at ×1, ×2 was asked for', resumesId: 3 });
    expect(operatorScaling([resumed, interrupted], 'count')).toEqual({ mine: resumed, inFlight: 1, lastProblem: undefined });
  });

  it('maps key groups to the subtask owning their (inclusive) range', () => {
    const owners = keyGroupOwners(
      [
        { index: 0, start: 0, end: 63 },
        { index: 1, start: 64, end: 127 },
      ],
      128,
    );
    expect([owners[0], owners[63], owners[64], owners[127], owners.length]).toEqual([0, 0, 1, 1, 128]);
    expect(keyGroupOwners([{ index: 0, start: 0, end: 1 }], 4)).toEqual([0, 0, -1, -1]);
  });
});

describe('scaling:event updates the query cache', () => {
  it('replaces an event by id, adds a new one newest first, and never moves a settled one back', () => {
    expect(scalingEventsWith([scaling(1)], aligned)).toEqual([aligned]);
    expect(scalingEventsWith([aligned], scaling(2)).map((e) => e.id)).toEqual([2, 1]);
    const list = [completed];
    expect(scalingEventsWith(list, aligned)).toBe(list);
    // The rescale request's answer (QUEUED) after the socket said it waits for slots.
    const waiting = [scaling(1, { status: 'WAITING_FOR_SLOTS' })];
    expect(scalingEventsWith(waiting, scaling(1))).toBe(waiting);
    expect(scalingEventsWith(waiting, aligned)).toEqual([aligned]);
  });

  function setup() {
    const client = new QueryClient();
    const socket = new EventEmitter();
    client.setQueryData<ScalingEvent[]>(queryKeys.scaling(JOB), [scaling(1)]);
    bindEventsToCache(socket, client);
    return { client, socket };
  }

  it('folds every phase change of a rescale into the job’s scaling events', () => {
    const { client, socket } = setup();
    socket.emit('scaling:event', aligned);
    expect(client.getQueryData(queryKeys.scaling(JOB))).toEqual([aligned]);
    socket.emit('scaling:event', scaling(2, { vertexId: 'map' }));
    expect(client.getQueryData<ScalingEvent[]>(queryKeys.scaling(JOB))?.map((e) => [e.id, e.status])).toEqual([
      [2, 'QUEUED'],
      [1, 'ALIGNING'],
    ]);
  });

  it('reads the job’s plan and key groups again once a rescale settles, not on every phase', () => {
    const { client, socket } = setup();
    client.setQueryData(queryKeys.keyGroups(JOB), []);
    socket.emit('scaling:event', aligned);
    expect(client.getQueryState(queryKeys.keyGroups(JOB))?.isInvalidated).toBe(false);
    socket.emit('scaling:event', completed);
    expect(client.getQueryState(queryKeys.keyGroups(JOB))?.isInvalidated).toBe(true);
    expect(client.getQueryData(queryKeys.scaling(JOB))).toEqual([completed]);
  });

  it('takes an interrupted rescale as settled: a late phase of it never brings it back', () => {
    const interrupted = scaling(1, { ...aligned, status: 'INTERRUPTED', reason: 'the job recovered during the pre-copy' });
    expect(scalingEventsWith([interrupted], aligned)).toEqual([interrupted]);
  });
});

describe('what an operator slider may do', () => {
  const vertex = (id: string, type: string, maxParallelism?: number) => ({
    id,
    type,
    parallelism: 1,
    ...(maxParallelism && { maxParallelism }),
    settings: {},
  });
  const plan = (max: Record<string, number>) => ({
    vertices: Object.fromEntries(Object.entries(max).map(([id, m]) => [id, { parallelism: 1, maxParallelism: m }])),
  });

  it('allows up to the smallest maxParallelism of the forward chain, which it rescales together', () => {
    const graph = {
      vertices: [vertex('events', 'generator'), vertex('count', 'count'), vertex('out', 'log')],
      edges: [
        { from: 'events', to: 'count', partitioning: 'hash', key: 'user' },
        { from: 'count', to: 'out', partitioning: 'forward' },
      ],
    };
    expect(sliderLimits(graph, plan({ events: 16, count: 128, out: 32 }), 'count')).toEqual({ max: 32, chain: ['count', 'out'] });
    expect(sliderLimits(graph, plan({ events: 16, count: 128, out: 32 }), 'out')).toEqual({ max: 32, chain: ['out', 'count'] });
    expect(sliderLimits(graph, plan({ events: 16, count: 128, out: 32 }), 'events')).toEqual({ max: 16, chain: ['events'] });
  });

  it('is blocked when a forward edge joins the operator to another chain', () => {
    const graph = {
      vertices: [vertex('events', 'generator'), vertex('a', 'log'), vertex('b', 'log')],
      edges: [
        { from: 'events', to: 'a', partitioning: 'forward' },
        { from: 'events', to: 'b', partitioning: 'forward' },
      ],
    };
    expect(sliderLimits(graph, plan({ events: 16, a: 128, b: 128 }), 'a')?.blocked).toBe(
      'joined to events by a forward edge, which needs equal parallelism on both ends',
    );
  });
});

describe('the rescale checkpoint, as the timeline names it', () => {
  it.each([
    [{ checkpointId: 41, checkpointNumber: 7 }, 'checkpoint #7'],
    [{ checkpointId: 41, checkpointNumber: null }, 'checkpoint id 41'],
    [{ checkpointId: null, checkpointNumber: null }, undefined],
  ])('%o reads %s', (ids, text) => {
    // The number within the job is what the Checkpoints table lists; the id is unique across jobs and only a fallback.
    expect(checkpointName(scaling(1, ids))).toBe(text);
  });
});
