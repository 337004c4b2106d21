import { EventEmitter } from 'node:events';
import type { ScalingEvent } from '@keyflow/api';
import { QueryClient } from '@tanstack/react-query';
import { describe, expect, it } from 'vitest';
import { queryKeys } from '../../lib/api';
import { bindEventsToCache, scalingEventsWith } from '../../lib/liveCache';
import { currentPhase, describeScaling, keyGroupOwners, operatorScaling, scalingPhases, sliderLimits } from './scaling';

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
  keyGroupsMoved: 0,
  bytesMoved: 0,
  pauseMs: null,
  reason: null,
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
});

describe('what an operator slider shows', () => {
  const queued = scaling(2, { vertexId: 'map', chainVertices: ['map'], toParallelism: 3 });

  it('finds the oldest rescale under way of the operator or of its forward chain, and counts the queue', () => {
    expect(operatorScaling([queued, aligned], 'sink')).toEqual({ mine: aligned, inFlight: 2, lastFailure: undefined });
    expect(operatorScaling([queued, aligned], 'map').mine).toBe(queued);
    expect(operatorScaling([queued, aligned], 'source')).toEqual({ mine: undefined, inFlight: 2, lastFailure: undefined });
  });

  it('keeps showing the last rescale that did not complete, until another one completes or starts', () => {
    const rolledBack = scaling(3, { status: 'ROLLED_BACK', reason: 'no free slots' });
    expect(operatorScaling([rolledBack, completed], 'count').lastFailure).toBe(rolledBack);
    expect(operatorScaling([scaling(4, { status: 'COMPLETED' }), rolledBack], 'count').lastFailure).toBeUndefined();
    expect(operatorScaling([scaling(4), rolledBack], 'count').lastFailure).toBeUndefined();
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
});

describe('what an operator slider may do', () => {
  const vertex = (id: string, type: string, maxParallelism?: number) => ({ id, type, parallelism: 1, ...(maxParallelism && { maxParallelism }), settings: {} });
  const plan = (max: Record<string, number>) => ({ vertices: Object.fromEntries(Object.entries(max).map(([id, m]) => [id, { parallelism: 1, maxParallelism: m }])) });

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
