import { buildChains, initialPlan, validateGraph } from '@keyflow/core';
import type { SubtaskProgress, WorkerEvent } from '@keyflow/runtime';
import { describe, expect, it } from 'vitest';
import type { ActiveJob, PendingCheckpoint } from '../jobs/activeJob.ts';
import { holders, StallDetector } from './stallDetector.ts';

type Metrics = Extract<WorkerEvent, { type: 'metrics' }>;

const OPTIONS = { warnMs: 2000, timeoutMs: 10_000, startWarnMs: 5000, startTimeoutMs: 30_000 };

describe('holders', () => {
  const stuck = (waits: Record<string, string[]>) => new Map(Object.entries(waits).map(([k, w]) => [k, { waitsFor: w }]));

  it.each<[string, Record<string, string[]>, string[]]>([
    ['one stuck subtask waiting for nobody holds itself up', { 'count#1': [] }, ['count#1']],
    ['a producer waiting for a stuck consumer: only the consumer', { 'events#0': ['count#1'], 'count#1': [] }, ['count#1']],
    ['a chain of waits ends at its root', { 'events#0': ['map#0'], 'map#0': ['count#1'], 'count#1': [] }, ['count#1']],
    ['a wait for a subtask that moves names nobody', { 'events#0': ['count#1'] }, []],
    ['two roots', { 'events#0': ['count#0', 'count#1'], 'count#0': [], 'count#1': [] }, ['count#0', 'count#1']],
    ['waiting for each other: both', { 'a#0': ['b#0'], 'b#0': ['a#0'] }, ['a#0', 'b#0']],
  ])('%s', (_, waits, expected) => {
    expect(holders(stuck(waits)).sort()).toEqual(expected);
  });
});

describe('StallDetector', () => {
  const graph = validateGraph({
    vertices: [
      { id: 'events', type: 'generator', parallelism: 1, settings: { splits: 4 } },
      { id: 'count', type: 'count', parallelism: 2 },
      { id: 'sink', type: 'log', parallelism: 2 },
    ],
    edges: [
      { from: 'events', to: 'count', partitioning: 'hash', key: 'user' },
      { from: 'count', to: 'sink', partitioning: 'forward' },
    ],
  });
  if (!graph.ok) throw new Error('test graph is invalid');
  const plan = initialPlan(graph.graph);
  const subtasks = ['events#0', 'count#0', 'count#1'];

  const job = (over: Partial<ActiveJob> = {}): ActiveJob =>
    ({
      id: 'j',
      attempt: 1,
      state: 'RUNNING',
      graph: graph.graph,
      plan,
      chains: buildChains(graph.graph, plan),
      subtasks,
      running: new Set(subtasks),
      finished: new Set(),
      takenBy: new Map(),
      ...over,
    }) as ActiveJob;

  const report = (key: string, moved: number, progress: Partial<SubtaskProgress> = {}): Metrics => {
    const [vertexId, index] = key.split('#') as [string, string];
    return {
      type: 'metrics',
      jobId: 'j',
      attempt: 1,
      vertexId,
      index: Number(index),
      windowMs: 500,
      backpressure: 0,
      vertices: { [vertexId]: { recordsIn: moved, recordsOut: moved, deadLetters: 0 } },
      progress: { backlog: 0, blockedOn: [], lastBarrier: 0, ...progress },
    };
  };

  /** Feeds reports every 500 ms from t0 up to `until` (each subtask as `reports` says at that time), then evaluates. */
  const run = (j: ActiveJob, reports: (t: number) => Metrics[], until: number) => {
    const d = new StallDetector(OPTIONS);
    d.evaluate(j, 0);
    let last;
    for (let t = 500; t <= until; t += 500) {
      for (const r of reports(t)) d.record(r, t);
      last = d.evaluate(j, t);
    }
    return last;
  };

  it('a job that moves is not stalled', () => {
    expect(run(job(), () => subtasks.map((k) => report(k, 100)), 20_000)).toBeUndefined();
  });

  it('an idle job (nothing waiting) is not stalled', () => {
    expect(run(job(), () => subtasks.map((k) => report(k, 0)), 20_000)).toBeUndefined();
  });

  it('a consumer that stopped reading: named after the warning time, failing over after the timeout; its blocked producer is not named', () => {
    const reports = (t: number) => [
      report('events#0', t < 3000 ? 100 : 0, t < 3000 ? {} : { backlog: 1, blockedOn: ['count#1'] }),
      report('count#0', t < 3000 ? 100 : 0),
      report('count#1', t < 3000 ? 100 : 0, t < 3000 ? {} : { backlog: 32 }),
    ];
    // It moved last in the window that ended at 2,500 ms.
    expect(run(job(), reports, 4000)).toBeUndefined();
    const shown = run(job(), reports, 6000)!;
    expect(shown.subtasks).toEqual([
      { subtask: 'count#1', reason: 'has 32 entries of input waiting but processes none', since: new Date(2500).toISOString() },
    ]);
    expect(shown.failover).toBe(false);
    expect(run(job(), reports, 12_000)!.failover).toBe(false);
    expect(run(job(), reports, 12_500)!.failover).toBe(true);
  });

  it('a subtask whose input brings only watermarks moves, though no record goes in or out and an entry has just come in', () => {
    // A window's results are rare while event time runs slowly (Nexmark q5 and q7 at full speed): the consumer of
    // the window reads watermark entries and nothing else for many seconds.
    const reports = (t: number) => [
      report('events#0', 100),
      report('count#0', 100),
      report('count#1', t < 1000 ? 100 : 0, t < 1000 ? {} : { backlog: 1, read: 4 }),
    ];
    expect(run(job(), reports, 20_000)).toBeUndefined();
    // The same reports without entries read: it has not moved since 500 ms.
    const still = (t: number) => reports(t).map((r) => (r.progress?.read ? { ...r, progress: { ...r.progress, read: undefined } } : r));
    expect(run(job(), still, 4000)!.subtasks).toEqual([
      { subtask: 'count#1', reason: 'has 1 entry of input waiting but processes none', since: new Date(500).toISOString() },
    ]);
  });

  it('a subtask whose sink does not write is named with what its sink holds; its producer blocked on it is not', () => {
    const reports = (t: number) => [
      report('events#0', 0, { backlog: 1, blockedOn: ['count#1'] }),
      report('count#0', 100),
      report('count#1', t <= 1000 ? 100 : 0, { backlog: 32, sinkWaiting: { buffered: 50_001, forMs: t - 1000 } }),
    ];
    const shown = run(job(), reports, 4000)!;
    expect(shown.subtasks).toEqual([
      {
        subtask: 'count#1',
        reason: 'waits for its sink to write the 50001 records it holds (the destination refuses them or takes them too slowly)',
        since: new Date(1000).toISOString(),
      },
    ]);
  });

  it('a subtask that goes silent is named; the clock starts at its last report', () => {
    const reports = (t: number) => subtasks.filter((k) => k !== 'count#0' || t <= 1000).map((k) => report(k, 100));
    const stall = run(job(), reports, 4000)!;
    expect(stall.subtasks.map((s) => [s.subtask, s.since])).toEqual([['count#0', new Date(1000).toISOString()]]);
  });

  it('a subtask aligning on a checkpoint no one triggered is named, though it still reads its other inputs', () => {
    const reports = () => [
      report('events#0', 0, { backlog: 1, blockedOn: ['count#1'] }),
      report('count#0', 100),
      report('count#1', 100, { aligning: { checkpoint: 99, forMs: 2500, missing: ['events#0'] } }),
    ];
    expect(run(job(), reports, 3000)!.subtasks.map((s) => s.reason)).toEqual(['is aligning on checkpoint 99, which is not in flight']);
  });

  it('a checkpoint that does not come through: the source that never emitted its barrier is named, not those waiting for it', () => {
    const pending = { number: 5, triggeredAt: 0, waiting: new Set(subtasks) } as PendingCheckpoint;
    const reports = () => subtasks.map((k) => report(k, 100, { lastBarrier: 4 }));
    const stall = run(job({ pending }), reports, 3000)!;
    expect(stall.subtasks).toEqual([
      { subtask: 'events#0', reason: 'has not emitted the barrier of checkpoint 5', since: new Date(0).toISOString() },
    ]);
  });

  it('a source whose barrier waits behind a full channel is not named; the consumer that does not read is', () => {
    const pending = { number: 5, triggeredAt: 0, waiting: new Set(subtasks) } as PendingCheckpoint;
    const reports = (t: number) => [
      // It moved until just now: only the checkpoint's wait can make it look stuck.
      report('events#0', t < 2500 ? 100 : 0, { lastBarrier: 4, ...(t >= 2500 && { backlog: 1, blockedOn: ['count#1'] }) }),
      report('count#0', 100, { lastBarrier: 4 }),
      report('count#1', t < 1000 ? 100 : 0, { lastBarrier: 4, ...(t >= 1000 && { backlog: 32 }) }),
    ];
    expect(run(job({ pending }), reports, 3000)!.subtasks.map((s) => s.subtask)).toEqual(['count#1']);
  });

  it('a barrier behind records that a slow consumer works through is slow, not stalled; once the consumer stops reading, it is named', () => {
    // Backpressure from a slow operator: the source waits on its full channel (its barrier queued behind the records)
    // while count#1 reads, seconds of work before the barrier; it has not seen the barrier yet, nor aligned.
    const pending = { number: 5, triggeredAt: 0, waiting: new Set(subtasks) } as PendingCheckpoint;
    const reports = (t: number) => [
      report('events#0', 0, { lastBarrier: 4, backlog: 1, blockedOn: ['count#1'] }),
      report('count#0', 100, { lastBarrier: 5 }),
      report('count#1', t < 9000 ? 100 : 0, { lastBarrier: 4, backlog: 32 }),
    ];
    expect(run(job({ pending }), reports, 9000)).toBeUndefined();
    expect(run(job({ pending }), reports, 12_000)!.subtasks.map((s) => [s.subtask, s.reason])).toEqual([
      ['count#1', 'has 32 entries of input waiting but processes none'],
    ]);
    // Aligning (a consumer of two inputs that has one's barrier) and working through the other's records: the same.
    const aligning = (t: number) => [
      report('events#0', 0, { lastBarrier: 4, backlog: 1, blockedOn: ['count#1'] }),
      report('count#0', 100, { lastBarrier: 5 }),
      report('count#1', 100, { lastBarrier: 4, backlog: 32, aligning: { checkpoint: 5, forMs: t, missing: ['events#0'] } }),
    ];
    expect(run(job({ pending }), aligning, 9000)).toBeUndefined();
  });

  it('a subtask that passed the barrier on and is still writing its state is slow, not stalled', () => {
    const pending = { number: 5, triggeredAt: 0, waiting: new Set(['count#1']) } as PendingCheckpoint;
    const reports = () => subtasks.map((k) => report(k, 100, { lastBarrier: 5 }));
    expect(run(job({ pending }), reports, 8000)).toBeUndefined();
  });

  it('a subtask of the plan that is not running is named; one a rescale in flight takes away is not', () => {
    const running = new Set(['events#0', 'count#0']);
    const reports = () => [report('events#0', 0, { backlog: 1, blockedOn: ['count#1'] }), report('count#0', 100)];
    expect(run(job({ running }), reports, 3000)!.subtasks.map((s) => `${s.subtask} ${s.reason}`)).toEqual(['count#1 is not running']);
    const rescale = {
      number: 5,
      triggeredAt: 0,
      waiting: new Set<string>(),
      rescale: { scalingId: 1, chainId: 'count', parallelism: 1 },
    } as unknown as PendingCheckpoint;
    expect(run(job({ running, pending: rescale }), () => [report('events#0', 100), report('count#0', 100)], 3000)).toBeUndefined();
  });

  it('gives a subtask that joins (a rescale started it) a clock of its own', () => {
    const d = new StallDetector(OPTIONS);
    const j = job();
    for (let t = 0; t <= 10_000; t += 500) {
      for (const k of subtasks) d.record(report(k, 100), t);
      d.evaluate(j, t);
    }
    j.running.add('count#2');
    expect(d.evaluate(j, 10_100)).toBeUndefined();
    d.record(report('count#2', 0, { restoring: true }), 10_600);
    expect(d.evaluate(j, 11_000)).toBeUndefined();
  });

  it('names a worker that froze with all the subtasks: the control plane still reads the events stream', () => {
    const d = new StallDetector(OPTIONS);
    const j = job();
    d.evaluate(j, 0);
    for (const k of subtasks) d.record(report(k, 100), 500);
    for (let t = 1000; t <= 4000; t += 500) d.hearing(t);
    expect(d.evaluate(j, 4000)?.subtasks.map((s) => s.subtask)).toEqual(['count#0', 'count#1', 'events#0']);
  });

  it('judges nobody while it cannot read the events stream (its own view is blind), and starts the clocks again after', () => {
    const d = new StallDetector(OPTIONS);
    const j = job();
    d.evaluate(j, 0);
    for (const k of subtasks) d.record(report(k, 100), 500);
    // Nothing heard from 500 until 20,000 (Redis away): no one is named, then or right after.
    expect(d.evaluate(j, 20_000)).toBeUndefined();
    for (const k of subtasks) d.record(report(k, 100), 20_500);
    expect(d.evaluate(j, 21_000)).toBeUndefined();
  });

  it('is not evaluated outside RUNNING, RESCALING and a starting attempt', () => {
    for (const state of ['STOPPING', 'CREATED'] as const) expect(run(job({ state }), () => [], 20_000)).toBeUndefined();
  });

  it.each(['SCHEDULING', 'RECOVERING'] as const)(
    'a %s attempt whose subtasks do not all start: named after the start warning with who took them, failing over after the start timeout',
    (state) => {
      const d = new StallDetector(OPTIONS);
      const j = job({ state, running: new Set(['events#0']), enqueuedAt: 1000, takenBy: new Map([['count#0', 'worker-2']]) });
      // The control plane reads its workers' events all along (else it judges nobody).
      const at = (t: number) => (d.hearing(t), d.evaluate(j, t));
      expect(at(5999)).toBeUndefined();
      const shown = at(6000)!;
      expect(shown.since).toBe(new Date(1000).toISOString());
      expect(shown.failover).toBe(false);
      expect(shown.subtasks.map((s) => [s.subtask, s.reason])).toEqual([
        ['count#0', expect.stringMatching(/^has not started: worker-2 took it but it has not reported running/)],
        ['count#1', expect.stringMatching(/^has not started: no worker took it/)],
      ]);
      expect(at(30_999)!.failover).toBe(false);
      expect(at(31_000)!.failover).toBe(true);
      // Once all run, the attempt is no longer starting.
      j.running = new Set(subtasks);
      expect(at(40_000)).toBeUndefined();
    },
  );

  it.each([
    [undefined, 'has not started: no worker took it (no free slot, or no worker reads the task queue)'],
    [{ workers: 0, slots: 0, usedSlots: 0 }, 'has not started: no worker took it: the pool has no live worker (start one)'],
    [
      { workers: 2, slots: 8, usedSlots: 8 },
      "has not started: no worker took it: all 8 slots of the pool's 2 workers are in use (add a worker, or lower a parallelism)",
    ],
    [
      { workers: 2, slots: 8, usedSlots: 7 },
      "has not started: no worker took it although 1 of the pool's 8 slots is free (on 2 workers; none of them reads the task queue)",
    ],
    [
      { workers: 1, slots: 4, usedSlots: 1 },
      "has not started: no worker took it although 3 of the pool's 4 slots are free (on 1 worker; none of them reads the task queue)",
    ],
  ])('a subtask no worker took, with the pool %o, reads: %s', (pool, reason) => {
    const d = new StallDetector(OPTIONS);
    if (pool) d.poolSeen(pool);
    const j = job({ state: 'SCHEDULING', running: new Set(['events#0', 'count#0']), enqueuedAt: 1000 });
    d.hearing(6000);
    expect(d.evaluate(j, 6000)?.subtasks).toEqual([expect.objectContaining({ subtask: 'count#1', reason })]);
  });

  it('a recovery waiting out its backoff (its attempt not queued yet) is not judged', () => {
    expect(run(job({ state: 'RECOVERING', running: new Set() }), () => [], 60_000)).toBeUndefined();
  });
});
