import type { CheckpointStorage } from '../checkpointStorage.ts';
import type { ConnectionResolver } from '../connectors/connection.ts';
import { incarnationOf, NO_WATERMARK, type Chain, type Edge, type Graph, type JobPlan, type RecordTime } from '@keyflow/core';
import type { PrismaClient } from '@keyflow/db';
import type { Redis } from 'ioredis';
import type { ChannelSettings } from '../channels.ts';
import type { RedisKeys } from '../keys.ts';
import type { Logger } from '../logger.ts';
import type { StopCause, TaskData, WorkerEvent } from '../protocol.ts';
import { BlockingDeadline, watchRedis } from '../redisConnection.ts';
import { withScripts, type KeyflowRedis } from '../scripts.ts';

export interface RuntimeSettings extends ChannelSettings {
  /** How long a partial batch may wait before it is sent. */
  lingerMs: number;
  metricsIntervalMs: number;
}

export const defaultRuntimeSettings: RuntimeSettings = {
  batchSize: 4096,
  bound: 32,
  inFlight: 8,
  debloatMs: 1000,
  lingerMs: 5,
  metricsIntervalMs: 500,
};

export interface SubtaskDeps {
  /** A connection for commands; the subtask makes its own blocking connection from it. */
  redis: Redis;
  prisma: PrismaClient;
  /** Where checkpoints' state chunks are written and restored from. */
  checkpoints: CheckpointStorage;
  keys: RedisKeys;
  workerId: string;
  /** Where postgres sinks write when their settings name no database. */
  databaseUrl: string;
  settings?: Partial<RuntimeSettings>;
  signal?: AbortSignal;
  /** Where the subtask logs: a child of the worker's logger, bound to the subtask. */
  logger: Logger;
  /** Told when a live rescale changed the subtask's parallelism (the worker's heartbeat lists it). */
  onRescaled?: () => void;
  /** Looks up the connection profiles connectors name (secrets decrypted). */
  connection?: ConnectionResolver;
}

export type SubtaskOutcome = 'finished' | 'stopped' | 'canceled' | 'fenced' | 'aborted';

export const now = () => performance.now();

/** Waits for the next turn of the event loop: long work lets records and replies through. */
export const yieldToLoop = () => new Promise((resolve) => setImmediate(resolve));

/** What every part of one running subtask shares: its task, connections, plan, and how it ends. */
export class SubtaskContext {
  readonly settings: RuntimeSettings;
  readonly redis: KeyflowRedis;
  /** The subtask's own connection for blocking reads (channels, commands, handovers). */
  readonly blocking: Redis;
  /** Ends a blocking read at its deadline, not at Redis's next clock tick. */
  readonly deadline: BlockingDeadline;
  readonly log: Logger;
  graph!: Graph;
  /** The plan as this subtask knows it: a live rescale changes it. */
  plan!: JobPlan;
  chains: Chain[] = [];
  /** The chain this subtask runs. */
  chain!: Chain;
  /** Set once the subtask is to end; every loop checks it. */
  outcome: SubtaskOutcome | undefined;
  /**
   * Event time: the timestamp of the record in hand (the chain's operators and the router read it; an operator that
   * emits sets it for what it emits) and the subtask's watermark (a source's output, any other's input).
   */
  readonly time: RecordTime = { timestamp: undefined, watermark: NO_WATERMARK };
  /** Whether the subtask's output is idle (all its splits or inputs are): downstream does not wait for its watermark. */
  idle = false;
  /** Why a subtask that was stopped or canceled ended, for the control plane to tell planned stops from failures. */
  stopCause: { cause: StopCause; scalingId?: number } | undefined;

  constructor(
    readonly task: TaskData,
    readonly deps: SubtaskDeps,
  ) {
    this.settings = { ...defaultRuntimeSettings, ...deps.settings };
    this.redis = withScripts(deps.redis);
    this.log = deps.logger;
    this.blocking = watchRedis(deps.redis.duplicate(), 'subtask channels', this.log);
    this.deadline = new BlockingDeadline(this.blocking, deps.redis);
  }

  emit(event: Record<string, unknown> & { type: WorkerEvent['type'] }): Promise<unknown> {
    const { jobId, attempt, vertexId, index } = this.task;
    return this.redis.xadd(this.deps.keys.events, 'MAXLEN', '~', 100_000, '*', 'e', JSON.stringify({ ...event, jobId, attempt, vertexId, index }));
  }

  /** Ends the subtask on the control plane's word (or a rescale's), saying why; the first reason stands. */
  stopAs(outcome: 'stopped' | 'canceled', cause: StopCause, scalingId?: number): void {
    if (this.outcome) return;
    this.outcome = outcome;
    this.stopCause = { cause, ...(scalingId !== undefined && { scalingId }) };
  }

  vertexPlan(id: string) {
    const p = this.plan.vertices[id];
    if (!p) throw new Error(`the job's plan lacks vertex ${id}`);
    return p;
  }

  /** This attempt's command stream. */
  commandsKey(): string {
    return this.deps.keys.commands(this.task.jobId, this.task.attempt);
  }

  /** The channel from producer subtask `from` to consumer subtask `to` over `edge`, named by both ends' incarnations. */
  channelKey(edge: Edge, from: number, to: number): string {
    const { jobId, attempt } = this.task;
    const ends = (vertexId: string, index: number) => [index, incarnationOf(this.plan, vertexId, index)] as const;
    return this.deps.keys.channel(jobId, attempt, this.graph.edges.indexOf(edge), ends(edge.from, from), ends(edge.to, to));
  }

  /** Rescale `scalingId`'s handover stream to subtask `to` of the rescaled chain. */
  handoverKey(scalingId: number, to: number): string {
    return this.deps.keys.handover(this.task.jobId, this.task.attempt, scalingId, to);
  }
}
