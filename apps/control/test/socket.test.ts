import { randomUUID } from 'node:crypto';
import { connectKeyflowSocket, serverEvents, type KeyflowSocket, type ServerEventName, type ServerEventPayload } from '@keyflow/api';
import type { GraphInput } from '@keyflow/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startStack, waitFor, type Stack } from './harness.ts';

/** An unbounded keyed count into a log sink: chains events#0, count#0 and count#1 (count→log chained), 5 operator subtasks. */
const graph: GraphInput = {
  vertices: [
    { id: 'events', type: 'generator', parallelism: 1, settings: { rate: 2000, keys: 100, splits: 4 } },
    { id: 'count', type: 'count', parallelism: 2 },
    { id: 'log', type: 'log', parallelism: 2, settings: { sampleSize: 10 } },
  ],
  edges: [
    { from: 'events', to: 'count', partitioning: 'hash', key: 'user' },
    { from: 'count', to: 'log', partitioning: 'forward' },
  ],
};
const OPERATOR_SUBTASKS = ['count#0', 'count#1', 'events#0', 'log#0', 'log#1'];

interface Received<E extends ServerEventName = ServerEventName> {
  event: E;
  payload: ServerEventPayload<E>;
  /** When this process received it (ms). */
  at: number;
}

/** Every event a socket receives, checked against the API contract's schema as it arrives. */
class Recorder {
  readonly events: Received[] = [];
  readonly invalid: string[] = [];

  constructor(socket: KeyflowSocket) {
    socket.onAny((event: string, payload: unknown) => {
      const schema = serverEvents[event as ServerEventName];
      const parsed = schema?.safeParse(payload);
      if (!parsed?.success) this.invalid.push(`${event}: ${parsed?.error.message ?? 'unknown event'}`);
      else this.events.push({ event: event as ServerEventName, payload: parsed.data as never, at: Date.now() });
    });
  }

  of<E extends ServerEventName>(event: E, jobId: string): Received<E>[] {
    return this.events.filter((e): e is Received<E> => e.event === event && (e.payload as { jobId: string }).jobId === jobId);
  }

  /** Waits for an event of the job that satisfies `match`. */
  next<E extends ServerEventName>(event: E, jobId: string, match: (p: ServerEventPayload<E>) => boolean, timeoutMs: number): Promise<Received<E>> {
    return waitFor(() => this.of(event, jobId).find((e) => match(e.payload)), timeoutMs, `${event} of job ${jobId}`);
  }
}

describe('Socket.IO live updates', () => {
  let stack: Stack;
  let socket: KeyflowSocket;
  let recorder: Recorder;

  const subscribe = (jobId: string) =>
    new Promise<boolean>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('job:subscribe was not acknowledged')), 5000);
      socket.emit('job:subscribe', jobId, (ok) => {
        clearTimeout(timer);
        resolve(ok);
      });
    });

  const deploy = async (opts: { checkpointIntervalMs: number; checkpointTimeoutMs?: number }) => {
    const p = await stack.client.createPipeline({ name: `socket-${randomUUID().slice(0, 8)}`, graph });
    const job = await stack.client.deployJob({ pipelineId: p.id, ...opts });
    expect(await subscribe(job.id)).toBe(true);
    await recorder
      .next('job:state', job.id, (s) => s.to === 'RUNNING', 20_000)
      .catch(async (err: Error) => {
        const events = (await stack.client.getJob(job.id)).events.map((e) => `${e.toState}: ${e.reason}`);
        throw new Error(`${err.message}; its events: ${events.join(' | ')}`);
      });
    return job;
  };

  beforeAll(async () => {
    // A worker is frozen on purpose below: heartbeat failure detection must not take it for dead meanwhile.
    stack = await startStack({ workers: 2, slots: 4, env: { HEARTBEAT_TIMEOUT_MS: '20000' } });
    socket = connectKeyflowSocket(stack.url, stack.token);
    recorder = new Recorder(socket);
    await waitFor(() => socket.connected, 10_000, 'the socket to connect');
  });
  afterAll(async () => {
    socket?.disconnect();
    await stack?.close();
  });

  it('sends a job’s state transitions, checkpoints with an ack per operator subtask, and metrics every second', async () => {
    const job = await deploy({ checkpointIntervalMs: 1000 });

    // Clients watching the job list get every transition, also those before they subscribed to the job.
    const transitions = () => recorder.of('job:state', job.id).map((e) => `${e.payload.from}→${e.payload.to}`);
    expect(transitions()).toEqual(['null→CREATED', 'CREATED→SCHEDULING', 'SCHEDULING→RUNNING']);
    expect(recorder.of('job:state', job.id).every((e) => e.payload.attempt === 1)).toBe(true);

    // A whole checkpoint, seen from its trigger on: one ack per operator subtask, counting up, then completion.
    const triggered = await recorder.next('checkpoint:triggered', job.id, (c) => c.kind === 'PERIODIC', 10_000);
    const { checkpointId, number } = triggered.payload;
    expect(triggered.payload.totalSubtasks).toBe(OPERATOR_SUBTASKS.length);
    const completed = await recorder.next('checkpoint:completed', job.id, (c) => c.id === checkpointId, 10_000);
    expect(completed.payload).toMatchObject({ number, status: 'COMPLETED', kind: 'PERIODIC', acknowledged: 5, totalSubtasks: 5 });
    expect(completed.payload.bytes).toBeGreaterThan(0);
    const acks = recorder.of('checkpoint:ack', job.id).filter((a) => a.payload.checkpointId === checkpointId);
    expect(acks.map((a) => a.payload.acknowledged)).toEqual([1, 2, 3, 4, 5]);
    expect(acks.every((a) => a.payload.totalSubtasks === 5 && a.payload.number === number)).toBe(true);
    expect(acks.map((a) => `${a.payload.vertexId}#${a.payload.subtaskIndex}`).sort()).toEqual(OPERATOR_SUBTASKS);
    expect(triggered.at).toBeLessThanOrEqual(acks[0]!.at);
    expect(acks.at(-1)!.at).toBeLessThanOrEqual(completed.at);
    expect(recorder.events.indexOf(acks.at(-1)!)).toBeLessThan(recorder.events.indexOf(completed));
    // The REST view agrees with what the socket said.
    const rest = (await stack.client.listCheckpoints(job.id)).find((c) => c.id === checkpointId)!;
    expect(rest).toMatchObject({ status: 'COMPLETED', acknowledged: 5 });

    // Metrics: at least one tick per second while the job runs, with rates and a backpressure per operator.
    const firstTick = await recorder.next(
      'job:metrics',
      job.id,
      (m) => (m.vertices.events?.recordsInPerSec ?? 0) > 0 && (m.vertices.count?.recordsInPerSec ?? 0) > 0,
      10_000,
    );
    const ticksSinceFirst = () => recorder.of('job:metrics', job.id).filter((m) => m.at >= firstTick.at);
    const ticks = await waitFor(() => ticksSinceFirst().length >= 5 && ticksSinceFirst(), 8000, 'five metrics ticks');
    const gaps = ticks.slice(1).map((t, i) => t.at - ticks[i]!.at);
    expect(Math.max(...gaps)).toBeLessThanOrEqual(1500);
    for (const { payload } of ticks) {
      expect(Object.keys(payload.vertices).sort()).toEqual(['count', 'events', 'log']);
      for (const v of Object.values(payload.vertices)) {
        expect(v.backpressure).toBeGreaterThanOrEqual(0);
        expect(v.backpressure).toBeLessThanOrEqual(1);
        expect(v.busy).toBeGreaterThanOrEqual(0);
        expect(v.busy).toBeLessThanOrEqual(1);
      }
    }
    // At 2,000 records/s, far below what a subtask takes in, count waits for input most of the time: not busy.
    const countBusy = ticks.map((t) => t.payload.vertices.count!.busy).sort((a, b) => a - b);
    expect(countBusy[Math.floor(countBusy.length / 2)]).toBeLessThan(0.5);
    // Rates are of the latest half-second windows: one stalled window may read 0, a running job may not.
    const flowing = ticks.filter((t) => t.payload.vertices.events!.recordsInPerSec > 0 && t.payload.vertices.count!.recordsInPerSec > 0);
    expect(flowing.length).toBeGreaterThanOrEqual(ticks.length - 1);
    expect(ticks.at(-1)!.payload.subtasks.map((s) => `${s.vertexId}#${s.index}`)).toEqual(OPERATOR_SUBTASKS);

    // Stop with a savepoint: STOPPING, the savepoint's checkpoint events, then STOPPED.
    await stack.client.stopJob(job.id);
    const stopped = await recorder.next('job:state', job.id, (s) => s.to === 'STOPPED', 20_000);
    expect(transitions().slice(3)).toEqual(['RUNNING→STOPPING', 'STOPPING→STOPPED']);
    const savepoint = recorder.of('checkpoint:triggered', job.id).find((c) => c.payload.kind === 'SAVEPOINT');
    expect(savepoint).toBeDefined();
    const savepointDone = recorder.of('checkpoint:completed', job.id).find((c) => c.payload.id === savepoint!.payload.checkpointId);
    expect(savepointDone?.payload).toMatchObject({ kind: 'SAVEPOINT', status: 'COMPLETED', acknowledged: 5 });
    expect(savepointDone!.at).toBeLessThanOrEqual(stopped.at);
    expect(stopped.payload.reason).toContain(`savepoint ${savepoint!.payload.number}`);
    expect(recorder.invalid).toEqual([]);
  });

  it('fails a checkpoint that times out, with a reason naming the subtasks that did not acknowledge', async () => {
    const job = await deploy({ checkpointIntervalMs: 3_600_000, checkpointTimeoutMs: 1000 });
    const workers = await waitFor(
      async () => {
        const ws = await stack.client.listWorkers();
        return ws.flatMap((w) => w.subtasks).filter((s) => s.jobId === job.id).length === 3 && ws;
      },
      10_000,
      'the workers to report the job’s subtasks',
    );
    const victim = workers.find((w) => w.subtasks.some((s) => s.jobId === job.id))!;
    const victimProcess = stack.workers.find((w) => w.pid === victim.pid);
    expect(victimProcess).toBeDefined();
    const frozen = victim.subtasks.filter((s) => s.jobId === job.id).map((s) => `${s.vertexId}#${s.index}`);

    victimProcess!.kill('SIGSTOP');
    let failed;
    try {
      const pending = await stack.client.triggerCheckpoint(job.id);
      failed = await recorder.next('checkpoint:failed', job.id, (c) => c.id === pending.id, 5000);
    } finally {
      victimProcess!.kill('SIGCONT');
    }
    expect(failed.payload).toMatchObject({ status: 'FAILED', kind: 'MANUAL' });
    expect(failed.payload.acknowledged).toBeLessThan(5);
    expect(failed.payload.failureReason).toMatch(/^timed out after 1000 ms; not acknowledged by /);
    for (const s of frozen) expect(failed.payload.failureReason).toContain(s);
    // Only those: no subtask that acknowledged is named.
    const { acks } = (await stack.client.listCheckpoints(job.id)).find((c) => c.id === failed.payload.id)!;
    const named = failed.payload.failureReason!.split('; ')[1]!;
    for (const a of acks) expect(named).not.toMatch(new RegExp(`\\b${a.vertexId}#${a.subtaskIndex}\\b`));
    expect(recorder.of('checkpoint:completed', job.id).some((c) => c.payload.id === failed.payload.id)).toBe(false);
    const rest = (await stack.client.listCheckpoints(job.id)).find((c) => c.id === failed.payload.id)!;
    expect(rest).toMatchObject({ status: 'FAILED', failureReason: failed.payload.failureReason });

    // A failed checkpoint is tolerated: once the worker runs again, the job is still RUNNING and the next one completes.
    const next = await stack.client.triggerCheckpoint(job.id);
    const done = await recorder.next('checkpoint:completed', job.id, (c) => c.id === next.id, 10_000);
    expect(done.payload.acknowledged).toBe(5);
    const j = await stack.client.getJob(job.id);
    expect(j).toMatchObject({ state: 'RUNNING', attempt: 1 });
    expect(recorder.of('job:state', job.id).map((e) => e.payload.to)).toEqual(['CREATED', 'SCHEDULING', 'RUNNING']);
    await stack.client.cancelJob(job.id);
    expect(recorder.invalid).toEqual([]);
  });
});
