import { EventEmitter } from 'node:events';
import type { Checkpoint, CheckpointDetail, Job, JobDetail } from '@keyflow/api';
import { QueryClient, QueryObserver } from '@tanstack/react-query';
import { describe, expect, it } from 'vitest';
import { queryKeys } from './api';
import {
  bindEventsToCache,
  checkpointsWithAck,
  checkpointsWithResult,
  checkpointsWithTriggered,
  jobsWith,
  jobsWithState,
  withDesired,
  withoutCheckpoint,
  withStall,
} from './liveCache';

const JOB = '11111111-1111-4111-8111-111111111111';
const at = (s: number) => new Date(Date.UTC(2026, 0, 1, 0, 0, s)).toISOString();

const job: Job = {
  id: JOB,
  pipelineId: '22222222-2222-4222-8222-222222222222',
  pipelineName: 'p',
  version: 1,
  state: 'RUNNING',
  attempt: 1,
  plan: { vertices: { src: { parallelism: 1, maxParallelism: 16 } } },
  desiredParallelism: { src: 1 },
  stall: null,
  checkpointIntervalMs: 1000,
  tolerableCheckpointFailures: 3,
  restoredFromId: null,
  restoredFrom: null,
  failureReason: null,
  createdAt: at(0),
  updatedAt: at(0),
  endedAt: null,
};
const detail: JobDetail = {
  ...job,
  graph: {},
  events: [],
  metrics: null,
  latestCheckpoints: [],
  sinkGuarantees: {},
  checkpointFailures: null,
  checkpointCounts: { triggered: 0, inProgress: 0, completed: 0, failed: 0, discarded: 0 },
  audit: [],
};

const completed = (id: number, number: number, extra: Partial<Checkpoint> = {}): Checkpoint => ({
  id,
  jobId: JOB,
  number,
  attempt: 1,
  kind: 'PERIODIC',
  status: 'COMPLETED',
  acknowledged: 2,
  totalSubtasks: 2,
  triggeredAt: at(number),
  completedAt: at(number + 1),
  durationMs: 120,
  bytes: 2048,
  alignmentMs: 3,
  failureReason: null,
  ...extra,
});

function setup() {
  const client = new QueryClient();
  const socket = new EventEmitter();
  client.setQueryData(queryKeys.jobs, [job]);
  client.setQueryData(queryKeys.job(JOB), detail);
  client.setQueryData<CheckpointDetail[]>(queryKeys.checkpoints(JOB), []);
  const unbind = bindEventsToCache(socket, client);
  return { client, socket, unbind };
}

describe('socket events update the query cache', () => {
  it('a lifecycle transition moves the job in the list and in its detail, and is appended to its events once', () => {
    const { client, socket } = setup();
    const e = { jobId: JOB, attempt: 1, from: 'RUNNING', to: 'STOPPING', reason: 'stop requested', at: at(5) } as const;
    socket.emit('job:state', e);
    socket.emit('job:state', e);
    expect(client.getQueryData<Job[]>(queryKeys.jobs)![0]!.state).toBe('STOPPING');
    const d = client.getQueryData<JobDetail>(queryKeys.job(JOB))!;
    expect(d.state).toBe('STOPPING');
    expect(d.events).toEqual([{ at: at(5), attempt: 1, fromState: 'RUNNING', toState: 'STOPPING', reason: 'stop requested' }]);
  });

  it('a terminal state sets the end time and a failure its reason', () => {
    const { client, socket } = setup();
    socket.emit('job:state', { jobId: JOB, attempt: 2, from: 'RECOVERING', to: 'FAILED', reason: 'too many restarts', at: at(9) });
    const d = client.getQueryData<JobDetail>(queryKeys.job(JOB))!;
    expect(d).toMatchObject({ state: 'FAILED', attempt: 2, endedAt: at(9), failureReason: 'too many restarts' });
  });

  it('a job the list does not know makes the list stale, to be fetched again', () => {
    const { client, socket } = setup();
    socket.emit('job:state', { jobId: '33333333-3333-4333-8333-333333333333', attempt: 1, from: null, to: 'CREATED', reason: null, at: at(1) });
    expect(client.getQueryState(queryKeys.jobs)!.isInvalidated).toBe(true);
    expect(jobsWithState([job], { jobId: 'other', attempt: 1, from: null, to: 'CREATED', reason: null, at: at(1) })).toBeUndefined();
  });

  it('a checkpoint appears pending, counts its acknowledgements, then completes with its size and duration', () => {
    const { client, socket } = setup();
    socket.emit('checkpoint:triggered', { jobId: JOB, checkpointId: 41, number: 7, kind: 'PERIODIC', totalSubtasks: 2, at: at(10) });
    let list = client.getQueryData<CheckpointDetail[]>(queryKeys.checkpoints(JOB))!;
    expect(list).toHaveLength(1);
    expect(list[0]).toMatchObject({ id: 41, number: 7, status: 'PENDING', acknowledged: 0, totalSubtasks: 2 });

    const ack = {
      jobId: JOB,
      checkpointId: 41,
      number: 7,
      vertexId: 'src',
      subtaskIndex: 0,
      ackedAt: at(10),
      alignmentMs: 0,
      syncMs: 1,
      asyncMs: 4,
      bytes: 100,
      totalSubtasks: 2,
    };
    socket.emit('checkpoint:ack', { ...ack, acknowledged: 1 });
    socket.emit('checkpoint:ack', { ...ack, acknowledged: 1 });
    list = client.getQueryData<CheckpointDetail[]>(queryKeys.checkpoints(JOB))!;
    expect(list[0]).toMatchObject({ acknowledged: 1, bytes: 100 });
    expect(list[0]!.acks).toHaveLength(1);

    socket.emit('checkpoint:completed', completed(41, 7));
    list = client.getQueryData<CheckpointDetail[]>(queryKeys.checkpoints(JOB))!;
    expect(list[0]).toMatchObject({ status: 'COMPLETED', durationMs: 120, bytes: 2048, acknowledged: 2 });
    expect(list[0]!.acks).toHaveLength(1);
    expect(client.getQueryData<JobDetail>(queryKeys.job(JOB))!.latestCheckpoints.map((c) => c.status)).toEqual(['COMPLETED']);
  });

  it('keeps the job’s checkpoint counts live: triggered, in progress, then completed or failed, each counted once', () => {
    const { client, socket } = setup();
    const counts = () => client.getQueryData<JobDetail>(queryKeys.job(JOB))!.checkpointCounts;
    socket.emit('checkpoint:triggered', { jobId: JOB, checkpointId: 41, number: 7, kind: 'PERIODIC', totalSubtasks: 2, at: at(10) });
    expect(counts()).toMatchObject({ triggered: 7, inProgress: 1, completed: 0, failed: 0 });
    socket.emit('checkpoint:completed', completed(41, 7));
    socket.emit('checkpoint:completed', completed(41, 7));
    expect(counts()).toMatchObject({ triggered: 7, inProgress: 0, completed: 1, failed: 0 });
    socket.emit('checkpoint:triggered', { jobId: JOB, checkpointId: 42, number: 8, kind: 'MANUAL', totalSubtasks: 2, at: at(20) });
    socket.emit('checkpoint:failed', completed(42, 8, { status: 'FAILED', failureReason: 'timed out' }));
    expect(counts()).toMatchObject({ triggered: 8, inProgress: 0, completed: 1, failed: 1 });
  });

  it('a failed checkpoint keeps its reason; newer checkpoints stay first', () => {
    const { client, socket } = setup();
    socket.emit('checkpoint:completed', completed(40, 6));
    socket.emit(
      'checkpoint:failed',
      completed(41, 7, { status: 'FAILED', completedAt: null, durationMs: null, failureReason: 'timed out after 1000 ms waiting for sink#0' }),
    );
    const list = client.getQueryData<CheckpointDetail[]>(queryKeys.checkpoints(JOB))!;
    expect(list.map((c) => [c.number, c.status])).toEqual([
      [7, 'FAILED'],
      [6, 'COMPLETED'],
    ]);
    expect(list[0]!.failureReason).toMatch(/timed out/);
  });

  it('metrics replace the job’s live figures', () => {
    const { client, socket } = setup();
    const metrics = {
      jobId: JOB,
      at: at(3),
      vertices: { src: { recordsInPerSec: 0, recordsOutPerSec: 900, backpressure: 0.2, deadLetters: 0, recordsIn: 0, recordsOut: 2700 } },
      subtasks: [],
    };
    socket.emit('job:metrics', metrics);
    expect(client.getQueryData<JobDetail>(queryKeys.job(JOB))!.metrics).toEqual(metrics);
  });

  it('checkpoint failures in a row show on the job as they come and go', () => {
    const { client, socket } = setup();
    const failures = { jobId: JOB, consecutive: 2, tolerable: 3, lastReason: "could not be started: Can't reach database server", at: at(5) };
    socket.emit('checkpoint:failures', failures);
    expect(client.getQueryData<JobDetail>(queryKeys.job(JOB))!.checkpointFailures).toEqual(failures);
    socket.emit('checkpoint:failures', { ...failures, consecutive: 0, at: at(6) });
    expect(client.getQueryData<JobDetail>(queryKeys.job(JOB))!.checkpointFailures!.consecutive).toBe(0);
  });

  it('a completed checkpoint, or a savepoint begun, makes the retained checkpoints stale: retention let some go unannounced', () => {
    const { client, socket } = setup();
    const retained = () => client.getQueryState(queryKeys.retainedCheckpoints(JOB))!.isInvalidated;
    const history = () => client.getQueryState(queryKeys.checkpoints(JOB))!.isInvalidated;
    client.setQueryData<CheckpointDetail[]>(queryKeys.retainedCheckpoints(JOB), []);
    socket.emit('checkpoint:triggered', { jobId: JOB, checkpointId: 41, number: 7, kind: 'PERIODIC', totalSubtasks: 2, at: at(10) });
    expect([retained(), history()]).toEqual([false, false]);
    socket.emit('checkpoint:triggered', { jobId: JOB, checkpointId: 42, number: 8, kind: 'SAVEPOINT', totalSubtasks: 2, at: at(11) });
    expect([retained(), history()]).toEqual([true, false]);
    client.setQueryData<CheckpointDetail[]>(queryKeys.retainedCheckpoints(JOB), []);
    socket.emit('checkpoint:completed', completed(41, 7));
    // The history is read again too: the rows retention let go are DISCARDED now.
    expect([retained(), history()]).toEqual([true, true]);
    expect(client.getQueryData<CheckpointDetail[]>(queryKeys.checkpoints(JOB))!.find((c) => c.id === 41)).toMatchObject({ status: 'COMPLETED' });
  });

  it('a stall shows on the job and its list row as it starts, changes and ends', () => {
    const { client, socket } = setup();
    const stall = {
      jobId: JOB,
      since: at(10),
      failoverAt: at(25),
      subtasks: [{ subtask: 'src#0', reason: 'has not reported (its process may be frozen or its event loop stuck)', since: at(10) }],
    };
    socket.emit('job:stall', { jobId: JOB, stall });
    expect(client.getQueryData<JobDetail>(queryKeys.job(JOB))!.stall).toEqual(stall);
    expect(client.getQueryData<Job[]>(queryKeys.jobs)![0]!.stall).toEqual(stall);
    socket.emit('job:stall', { jobId: JOB, stall: null });
    expect(client.getQueryData<JobDetail>(queryKeys.job(JOB))!.stall).toBeNull();
    expect(client.getQueryData<Job[]>(queryKeys.jobs)![0]!.stall).toBeNull();
  });

  it('the parallelism a job converges to follows job:desired, in its detail and its list row', () => {
    const { client, socket } = setup();
    socket.emit('job:desired', { jobId: JOB, desiredParallelism: { src: 3 } });
    expect(client.getQueryData<JobDetail>(queryKeys.job(JOB))!.desiredParallelism).toEqual({ src: 3 });
    expect(client.getQueryData<Job[]>(queryKeys.jobs)![0]!.desiredParallelism).toEqual({ src: 3 });
    // A rescale rolled back: the job converges to what it runs at again.
    socket.emit('job:desired', { jobId: JOB, desiredParallelism: { src: 1 } });
    expect(client.getQueryData<JobDetail>(queryKeys.job(JOB))!.desiredParallelism).toEqual({ src: 1 });
  });

  it('stall and desired events of a job the list does not show leave the list alone', () => {
    const { client, socket } = setup();
    const list = client.getQueryData<Job[]>(queryKeys.jobs);
    socket.emit('job:desired', { jobId: 'other', desiredParallelism: { src: 2 } });
    socket.emit('job:stall', { jobId: 'other', stall: null });
    expect(client.getQueryData<Job[]>(queryKeys.jobs)).toBe(list);
    expect(client.getQueryState(queryKeys.jobs)!.isInvalidated).toBe(false);
  });

  it('events for queries not in the cache change nothing, and unbinding stops the updates', () => {
    const { client, socket, unbind } = setup();
    socket.emit('checkpoint:completed', { ...completed(1, 1), jobId: 'not-cached' });
    expect(client.getQueryData(queryKeys.checkpoints('not-cached'))).toBeUndefined();
    unbind();
    expect(socket.listenerCount('job:state')).toBe(0);
    socket.emit('job:state', { jobId: JOB, attempt: 1, from: 'RUNNING', to: 'CANCELED', reason: null, at: at(4) });
    expect(client.getQueryData<Job[]>(queryKeys.jobs)![0]!.state).toBe('RUNNING');
  });
});

describe('checkpoint history folds', () => {
  const pending = { jobId: JOB, checkpointId: 5, number: 5, kind: 'PERIODIC', totalSubtasks: 3, at: at(1) } as const;

  it('add a triggered checkpoint once, sorted newest first', () => {
    const once = checkpointsWithTriggered([{ ...completed(4, 4), acks: [] }], pending, 1);
    expect(once.map((c) => c.number)).toEqual([5, 4]);
    expect(checkpointsWithTriggered(once, pending, 1)).toBe(once);
  });

  it('ignore acks of unknown checkpoints and never lower a count', () => {
    const list = [{ ...completed(5, 5, { acknowledged: 3, totalSubtasks: 3 }), acks: [] }];
    const ack = {
      jobId: JOB,
      checkpointId: 5,
      number: 5,
      vertexId: 'a',
      subtaskIndex: 1,
      ackedAt: at(2),
      alignmentMs: 0,
      syncMs: 0,
      asyncMs: 0,
      bytes: 1,
      acknowledged: 1,
      totalSubtasks: 3,
    };
    expect(checkpointsWithAck(list, { ...ack, checkpointId: 99 })).toBe(list);
    expect(checkpointsWithAck(list, ack)[0]!.acknowledged).toBe(3);
  });

  it('insert a result that was never seen pending', () => {
    expect(checkpointsWithResult([], completed(9, 9))[0]).toMatchObject({ id: 9, acks: [] });
  });

  it('drop a deleted savepoint, and stay the same list when it was not there', () => {
    const list = [9, 8].map((n) => ({ ...completed(n, n), acks: [] }));
    expect(withoutCheckpoint(list, 8).map((c) => c.id)).toEqual([9]);
    expect(withoutCheckpoint(list, 1)).toBe(list);
  });
});

describe('job folds', () => {
  it('return the same job, and the same list, when an event changes nothing', () => {
    expect(withStall(job, { jobId: JOB, stall: null })).toBe(job);
    expect(withDesired(job, { jobId: JOB, desiredParallelism: { src: 1 } })).toBe(job);
    expect(withDesired(job, { jobId: 'other', desiredParallelism: { src: 2 } })).toBe(job);
    const jobs = [job];
    expect(jobsWith(jobs, JOB, (j) => j)).toBe(jobs);
    expect(jobsWith(jobs, 'other', (j) => ({ ...j, attempt: 9 }))).toBe(jobs);
    expect(jobsWith(jobs, JOB, (j) => ({ ...j, attempt: 9 }))[0]!.attempt).toBe(9);
  });
});

describe('events that race a fetch', () => {
  it('a transition that arrives while the job is being fetched makes it fetch again, so an older answer cannot win', async () => {
    const client = new QueryClient();
    const socket = new EventEmitter();
    bindEventsToCache(socket, client);
    const answers = [
      { ...detail, state: 'SCHEDULING' as const },
      { ...detail, state: 'RUNNING' as const },
    ];
    let calls = 0;
    // An observer, as the job page has: invalidation refetches the queries someone is looking at.
    const observer = new QueryObserver(client, {
      queryKey: queryKeys.job(JOB),
      queryFn: async () => {
        const answer = answers[calls++]!;
        await new Promise((r) => setTimeout(r, 20));
        return answer;
      },
    });
    const unsubscribe = observer.subscribe(() => {});
    await new Promise((r) => setTimeout(r, 5));
    socket.emit('job:state', { jobId: JOB, attempt: 1, from: 'SCHEDULING', to: 'RUNNING', reason: null, at: at(2) });
    await new Promise((r) => setTimeout(r, 80));
    unsubscribe();
    expect(calls).toBe(2);
    expect(client.getQueryData<JobDetail>(queryKeys.job(JOB))!.state).toBe('RUNNING');
  });
});
