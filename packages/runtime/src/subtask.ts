import {
  BarrierAligner,
  buildChains,
  chainOf,
  consumersFor,
  createOperator,
  decodeBatch,
  decodeValue,
  encodeValue,
  EventGenerator,
  generatorSettings,
  getField,
  incarnationOf,
  keyGroupFor,
  KeyedStateBackend,
  keyGroupsOf,
  logSinkSettings,
  operatorSpec,
  postgresSinkSettings,
  producersFor,
  rangeFor,
  rescaledPlan,
  subtaskFor,
  validateGraph,
  type Chain,
  type Edge,
  type Graph,
  type JobPlan,
  type Key,
  type KeyGroupRange,
  type Output,
  type Rec,
  type Vertex,
} from '@keyflow/core';
import type { PrismaClient } from '@keyflow/db';
import type { Redis } from 'ioredis';
import { ChannelWriter, parseEntry, type ChannelSettings } from './channels.ts';
import { readChunks, writeChunks, type StateChunkData } from './checkpointStorage.ts';
import { HandoverReceiver, sendHandover, type HandoverMessage, type HandoverPart } from './handover.ts';

/** What a subtask waits to be handed: per operator and scope, the parts (key groups or splits). */
type Expected = ConstructorParameters<typeof HandoverReceiver>[0];
import { LogSink } from './connectors/logSink.ts';
import { isTransient, PostgresSink } from './connectors/postgresSink.ts';
import { SinkFencedError, type Sink } from './connectors/sink.ts';
import type { RedisKeys } from './keys.ts';
import type { Command, RescaleSpec, StopCause, SubtaskProgress, TaskData, VertexAck, VertexMetrics, WorkerEvent } from './protocol.ts';
import { silentLogger, type Logger } from './logger.ts';
import { watchRedis } from './redisConnection.ts';
import { withScripts, type KeyflowRedis } from './scripts.ts';

export interface RuntimeSettings extends ChannelSettings {
  /** How long a partial batch may wait before it is sent. */
  lingerMs: number;
  metricsIntervalMs: number;
}

export const defaultRuntimeSettings: RuntimeSettings = { batchSize: 4096, bound: 32, lingerMs: 5, metricsIntervalMs: 500 };

export interface SubtaskDeps {
  /** A connection for commands; the subtask makes its own blocking connection from it. */
  redis: Redis;
  prisma: PrismaClient;
  keys: RedisKeys;
  workerId: string;
  /** Where postgres sinks write when their settings name no database. */
  databaseUrl: string;
  settings?: Partial<RuntimeSettings>;
  signal?: AbortSignal;
  /** Where the subtask logs (a child of the worker's logger, bound to the subtask); silent when left out. */
  logger?: Logger;
  /** Told when a live rescale changed the subtask's parallelism (the worker's heartbeat lists it). */
  onRescaled?: () => void;
}

export type SubtaskOutcome = 'finished' | 'stopped' | 'canceled' | 'fenced' | 'aborted';

/** Runs one subtask (a chain × index) until it finishes, is stopped, canceled or fenced off. */
export async function runSubtask(task: TaskData, deps: SubtaskDeps): Promise<SubtaskOutcome> {
  const subtask = new Subtask(task, deps);
  try {
    await subtask.open();
    return await subtask.run();
  } catch (err) {
    await subtask.emit({ type: 'failed', error: err instanceof Error ? err.message : String(err) }).catch(() => {});
    throw err;
  } finally {
    await subtask.close();
  }
}

interface KeyedVertex {
  vertex: Vertex;
  backend: KeyedStateBackend;
  range: KeyGroupRange;
}

interface InputChannel {
  key: string;
  /** The producer subtask, as `chainId#index`. */
  producer: string;
  lastId: string;
  lastSeq: number;
}

interface RouteTarget {
  edge: Edge;
  writers: ChannelWriter[];
  /** The consumer subtask of each writer, as `chainId#index`. */
  consumers: string[];
  maxParallelism: number;
  parallelism: number;
  rr: number;
}

const now = () => performance.now();

class Subtask {
  private readonly settings: RuntimeSettings;
  private readonly redis: KeyflowRedis;
  private readonly blocking: Redis;
  private readonly log: Logger;
  private graph!: Graph;
  private plan!: JobPlan;
  private chain!: Chain;
  private chains: Chain[] = [];
  private aligner: BarrierAligner | undefined;
  private head!: Output;
  private routes: RouteTarget[] = [];
  private sinks: Sink[] = [];
  private keyed: KeyedVertex[] = [];
  private inputs: InputChannel[] = [];
  private source:
    | { vertex: Vertex; gen: EventGenerator; splits: number[]; offsets: Map<number, number>; sizes: Map<number, number>; rate: number; ratePerSplit: number }
    | undefined;
  private readonly metrics = new Map<string, VertexMetrics>();
  private readonly deadLetterSamples = new Map<string, string[]>();
  private cmdLastId = '0-0';
  private lastFlush = now();
  private lastMetrics = now();
  private metricsTimer: NodeJS.Timeout | undefined;
  private reporting: Promise<unknown> | undefined;
  private lastCommandRead = 0;
  private lastSinkFlush = now();
  private sinkFlushMs = 1000;
  private stopAfterBarrier = false;
  private outcome: SubtaskOutcome | undefined;
  /** Why a subtask that was stopped or canceled ended, for the control plane to tell planned stops from failures. */
  private stopCause: { cause: StopCause; scalingId?: number } | undefined;
  /** The newest checkpoint whose barrier this subtask passed on, and whether it waits for a rescale's state. */
  private lastBarrier = 0;
  private restoring = false;
  /** A source with events due now (not waiting for its rate). */
  private sourceDue = true;
  private pendingWrite: Promise<void> = Promise.resolve();
  private keyField: string | undefined;
  private keyedHead: KeyedVertex | undefined;
  /** Records per key group of the keyed head since the last metrics event (the key-group view shows skew). */
  private keyGroupRecords = new Uint32Array(0);

  constructor(
    private readonly task: TaskData,
    private readonly deps: SubtaskDeps,
  ) {
    this.settings = { ...defaultRuntimeSettings, ...deps.settings };
    this.redis = withScripts(deps.redis);
    this.log = deps.logger ?? silentLogger;
    this.blocking = watchRedis(deps.redis.duplicate(), 'subtask channels', this.log);
  }

  emit(event: Record<string, unknown> & { type: WorkerEvent['type'] }): Promise<unknown> {
    const { jobId, attempt, vertexId, index } = this.task;
    return this.redis.xadd(this.deps.keys.events, 'MAXLEN', '~', 100_000, '*', 'e', JSON.stringify({ ...event, jobId, attempt, vertexId, index }));
  }

  async open(): Promise<void> {
    const { task, deps } = this;
    const job = await deps.prisma.job.findUniqueOrThrow({ where: { id: task.jobId }, include: { pipelineVersion: true } });
    const valid = validateGraph(job.pipelineVersion.graph);
    if (!valid.ok) throw new Error(`job ${task.jobId} has an invalid graph: ${valid.issues[0]?.message}`);
    this.graph = valid.graph;
    this.plan = task.plan ?? (job.plan as unknown as JobPlan);
    const chains = buildChains(this.graph, this.plan);
    this.chains = chains;
    const chain = chains.find((c) => c.id === task.vertexId);
    if (!chain) throw new Error(`no chain headed by ${task.vertexId} in job ${task.jobId}`);
    this.chain = chain;
    for (const v of chain.vertices) this.metrics.set(v.id, { recordsIn: 0, recordsOut: 0, deadLetters: 0 });

    if (task.commandsAfter !== undefined) this.cmdLastId = task.commandsAfter;
    else {
      const last = await this.redis.xrevrange(this.commandsKey(), '+', '-', 'COUNT', 1);
      this.cmdLastId = last[0]?.[0] ?? '0-0';
    }

    // Which checkpoint a transactional sink settles older attempts' output against (see Sink.open).
    if (task.joinRescale === undefined) {
      const from =
        task.restoreFrom === undefined
          ? undefined
          : await deps.prisma.checkpoint.findUnique({ where: { id: task.restoreFrom }, select: { jobId: true, number: true } });
      this.recoverFrom = from?.jobId === task.jobId ? from.number : 0;
      this.lastCompleted = this.recoverFrom;
    }
    this.syncChannels();
    this.keyField = this.chain.inputs.find((e) => e.partitioning === 'hash')?.key;
    this.head = this.buildChainOutputs();
    const started = now();
    const restored = task.restoreFrom !== undefined ? await this.restore(task.restoreFrom) : { bytes: 0, keyGroups: 0, splits: 0 };
    await Promise.all(this.sinks.map((s) => s.open()));
    await this.emit({
      type: 'running',
      workerId: deps.workerId,
      restoredBytes: restored.bytes,
      restoredKeyGroups: restored.keyGroups,
      restoreMs: Math.round(now() - started),
    });
  }

  private vertexPlan(id: string) {
    const p = this.plan.vertices[id];
    if (!p) throw new Error(`the job's plan lacks vertex ${id}`);
    return p;
  }

  /** This attempt's command stream. */
  private commandsKey(): string {
    return this.deps.keys.commands(this.task.jobId, this.task.attempt);
  }

  /** The channel from producer subtask `from` to consumer subtask `to` over `edge`, named by both ends' incarnations. */
  private channelKey(edge: Edge, from: number, to: number): string {
    const { jobId, attempt } = this.task;
    const ends = (vertexId: string, index: number) => [index, incarnationOf(this.plan, vertexId, index)] as const;
    return this.deps.keys.channel(jobId, attempt, this.graph.edges.indexOf(edge), ends(edge.from, from), ends(edge.to, to));
  }

  /**
   * Makes the output writers and input channels match the plan: at open, and after a rescale changed it. A channel
   * the plan keeps keeps its writer or read position; one it lost is dropped (its last entry was the rescale's
   * barrier); a new one starts empty, under a name no earlier incarnation of its ends ever used.
   */
  private syncChannels(): void {
    const { task } = this;
    const writers = new Map(this.routes.flatMap((r) => r.writers.map((w) => [w.key, w] as const)));
    this.routes = this.chain.outputs.map((edge) => {
      const consumer = chainOf(this.chains, edge.to)!;
      const to = consumersFor(edge, task.index, consumer.parallelism);
      return {
        edge,
        writers: to.map((j) => {
          const key = this.channelKey(edge, task.index, j);
          return writers.get(key) ?? new ChannelWriter(this.redis, key, this.settings);
        }),
        consumers: to.map((j) => `${consumer.id}#${j}`),
        parallelism: consumer.parallelism,
        maxParallelism: this.vertexPlan(edge.to).maxParallelism,
        rr: this.routes.find((r) => r.edge === edge)?.rr ?? task.index,
      };
    });
    const inputs = new Map(this.inputs.map((c) => [c.key, c]));
    this.inputs = this.chain.inputs.flatMap((edge) => {
      const producer = chainOf(this.chains, edge.from)!;
      return producersFor(edge, task.index, producer.parallelism).map((i) => {
        const key = this.channelKey(edge, i, task.index);
        return inputs.get(key) ?? { key, producer: `${producer.id}#${i}`, lastId: '0-0', lastSeq: 0 };
      });
    });
    if (!this.aligner) return;
    const kept = new Set(this.inputs.map((c) => c.key));
    for (const key of inputs.keys()) if (!kept.has(key)) this.aligner.removeChannel(key);
    for (const c of this.inputs) if (!inputs.has(c.key)) this.aligner.addChannel(c.key);
  }

  private deadLetter(vertexId: string, record: unknown, reason: string): void {
    // A hash route dead-letters for its consumer, which runs in another chain: count it here all the same.
    let m = this.metrics.get(vertexId);
    if (!m) this.metrics.set(vertexId, (m = { recordsIn: 0, recordsOut: 0, deadLetters: 0 }));
    m.deadLetters++;
    let samples = this.deadLetterSamples.get(vertexId);
    if (!samples) this.deadLetterSamples.set(vertexId, (samples = []));
    if (samples.length < 100)
      samples.push(JSON.stringify({ at: Date.now(), reason, record: safeJson(record) }));
  }

  /** Wires the chain's operators by function call, tail first; returns the head's input. */
  private buildChainOutputs(): Output {
    const { task } = this;
    let next: Output = {
      emit: (rec) => {
        for (const r of this.routes) this.route(r, rec);
      },
    };
    for (let i = this.chain.vertices.length - 1; i >= 0; i--) {
      const v = this.chain.vertices[i]!;
      const m = this.metrics.get(v.id)!;
      const kind = operatorSpec(v.type)!.kind;
      const downstream = next;
      const counted: Output = {
        emit: (rec) => {
          m.recordsOut++;
          downstream.emit(rec);
        },
      };
      if (kind === 'sink') {
        const sink = this.createSink(v);
        this.sinks.push(sink);
        next = {
          emit: (rec) => {
            m.recordsIn++;
            sink.process(rec);
          },
        };
      } else if (kind === 'source') {
        const s = generatorSettings.parse(v.settings);
        const splits = EventGenerator.splitsFor(task.index, task.parallelism, s.splits);
        const gen = new EventGenerator(s);
        this.source = {
          vertex: v,
          gen,
          splits,
          offsets: new Map(splits.map((x) => [x, 0])),
          sizes: new Map(splits.map((x) => [x, gen.splitSize(x)])),
          rate: (s.rate * splits.length) / s.splits,
          ratePerSplit: s.rate / s.splits,
        };
        next = counted;
      } else {
        let backend: KeyedStateBackend | undefined;
        if (kind === 'keyed') {
          const { maxParallelism, parallelism } = this.vertexPlan(v.id);
          backend = new KeyedStateBackend(maxParallelism);
          const kv = { vertex: v, backend, range: rangeFor(task.index, parallelism, maxParallelism) };
          this.keyed.push(kv);
          if (i === 0) {
            this.keyedHead = kv;
            this.keyGroupRecords = new Uint32Array(maxParallelism);
          }
        }
        const op = createOperator(v, { backend, deadLetter: (r, reason) => this.deadLetter(v.id, r, reason) });
        const key = () => backend?.currentKey;
        next = {
          emit: (rec) => {
            m.recordsIn++;
            op.process(rec, key(), counted);
          },
        };
      }
    }
    return next;
  }

  private createSink(v: Vertex): Sink {
    const dl = (r: unknown, reason: string) => this.deadLetter(v.id, r, reason);
    if (v.type === 'postgres') {
      const s = postgresSinkSettings.parse(v.settings);
      this.sinkFlushMs = Math.min(this.sinkFlushMs, s.flushIntervalMs);
      const { jobId, attempt, index } = this.task;
      return new PostgresSink(s, this.deps.databaseUrl, { jobId, vertexId: v.id, attempt, index, recoverFrom: this.recoverFrom }, dl);
    }
    if (v.type === 'log') return new LogSink(logSinkSettings.parse(v.settings), this.redis, this.deps.keys.sample(this.task.jobId, v.id));
    throw new Error(`unknown sink type ${v.type}`);
  }

  private route(r: RouteTarget, rec: Rec): void {
    switch (r.edge.partitioning) {
      case 'forward':
        r.writers[0]!.push(rec);
        return;
      case 'hash': {
        const key = getField(rec, r.edge.key!);
        if (!isKey(key)) return this.deadLetter(r.edge.to, rec, `record lacks the key field '${r.edge.key}'`);
        r.writers[subtaskFor(keyGroupFor(key, r.maxParallelism), r.parallelism, r.maxParallelism)]!.push(rec);
        return;
      }
      case 'rebalance':
        r.writers[r.rr++ % r.writers.length]!.push(rec);
        return;
      case 'broadcast':
        for (const w of r.writers) w.push(rec);
    }
  }

  /** Feeds one input record to the chain's head, scoping keyed state to its key first. */
  private processInput(rec: Rec): void {
    const kv = this.keyedHead;
    if (kv) {
      const key = getField(rec, this.keyField!);
      if (!isKey(key)) return this.deadLetter(kv.vertex.id, rec, `record lacks the key field '${this.keyField}'`);
      const kg = keyGroupFor(key, kv.backend.maxParallelism);
      if (kg < kv.range.start || kg > kv.range.end)
        return this.deadLetter(kv.vertex.id, rec, `key group ${kg} is not owned by subtask ${this.task.index}`);
      kv.backend.setCurrentKey(key, kg);
      this.keyGroupRecords[kg]!++;
    }
    this.head.emit(rec);
  }

  /** Loads from a checkpoint the key groups of each keyed operator's range and the offsets of the source's splits. */
  private async restore(checkpointId: number): Promise<{ bytes: number; keyGroups: number; splits: number }> {
    let bytes = 0;
    let keyGroups = 0;
    let splits = 0;
    for (const kv of this.keyed) {
      for (const c of await readChunks(this.deps.prisma, checkpointId, kv.vertex.id, 'KEYED', kv.range.start, kv.range.end)) {
        kv.backend.restore(c.part, c.data);
        bytes += c.data.byteLength;
        keyGroups++;
      }
    }
    const src = this.source;
    if (src) {
      const chunks = await readChunks(this.deps.prisma, checkpointId, src.vertex.id, 'OPERATOR', src.splits[0]!, src.splits[src.splits.length - 1]!);
      for (const c of chunks) {
        src.offsets.set(c.part, decodeValue<{ offset: number }>(c.data).offset);
        bytes += c.data.byteLength;
        splits++;
      }
    }
    return { bytes, keyGroups, splits };
  }

  async run(): Promise<SubtaskOutcome> {
    this.startMetrics();
    if (this.task.joinRescale !== undefined) {
      // Started by a rescale: everything in its range arrives from the old owners once they aligned.
      const t0 = now();
      const src = this.source;
      if (this.gatedSinks() && this.keyed.length) this.sinkGate = this.task.joinRescale;
      const loaded = await this.receiveHandover(this.task.joinRescale, [
        ...this.keyed.map((kv) => ({ vertexId: kv.vertex.id, scope: 'KEYED' as const, parts: keyGroupsOf(kv.range) })),
        ...(src ? [{ vertexId: src.vertex.id, scope: 'OPERATOR' as const, parts: src.splits }] : []),
      ]);
      if (!loaded) return (this.outcome ??= 'canceled');
      await this.emit({
        type: 'rescaled',
        scalingId: this.task.joinRescale,
        keyGroupsLoaded: loaded.parts,
        bytesLoaded: loaded.bytes,
        restoreMs: Math.round(now() - t0),
        pauseMs: 0,
        runningAt: Date.now(),
      });
    }
    if (this.source) await this.runSource();
    else await this.runInputs();
    return this.outcome ?? 'finished';
  }

  private async runSource(): Promise<void> {
    const src = this.source!;
    const { gen, offsets } = src;
    let started = now();
    let rate = src.rate;
    let emitted = 0;
    while (!this.outcome) {
      let wait = 0;
      let budget = this.settings.batchSize;
      if (src.rate !== rate) {
        // A rescale changed this subtask's splits, and so its share of the rate.
        rate = src.rate;
        started = now();
        emitted = 0;
      }
      if (src.rate > 0) {
        const allowed = Math.floor(((now() - started) / 1000) * src.rate) - emitted;
        if (allowed <= 0) wait = Math.max(1, Math.ceil(((emitted + 1) / src.rate) * 1000 - (now() - started)));
        budget = Math.min(budget, Math.max(0, allowed));
        if (allowed > 10 * src.rate) {
          // Far behind (after a pause): catch up gradually rather than in one burst.
          started = now() - (emitted / src.rate) * 1000;
        }
      }
      if (this.stopAfterBarrier) wait = 200;
      // Waiting for its rate (or for a stop) is no backlog: nothing is due.
      this.sourceDue = wait === 0;
      // Commands are read between batches: blocking while there is time to wait, else every linger period.
      if (wait > 0 || now() - this.lastCommandRead >= this.settings.lingerMs) {
        this.lastCommandRead = now();
        await this.readCommands(this.routesBuffered() ? Math.min(wait, this.settings.lingerMs) : Math.min(wait, 200));
      }
      if (this.outcome || this.stopAfterBarrier) continue;
      // Read after the commands: a rescale handled there may have changed this subtask's splits.
      const { splits, sizes } = src;
      let produced = 0;
      let exhausted = true;
      while (produced < budget) {
        let progressed = false;
        for (const s of splits) {
          const off = offsets.get(s)!;
          if (off >= sizes.get(s)!) continue;
          progressed = true;
          this.head.emit(gen.eventAt(gen.indexOf(s, off)) as unknown as Rec);
          offsets.set(s, off + 1);
          if (++produced >= budget) break;
        }
        if (!progressed) break;
      }
      for (const s of splits) if (offsets.get(s)! < sizes.get(s)!) exhausted = false;
      this.metrics.get(src.vertex.id)!.recordsIn += produced;
      emitted += produced;
      await this.afterWork();
      if (exhausted) {
        await this.finish();
        return;
      }
    }
  }

  /** Every output channel of this subtask. */
  private writers(): ChannelWriter[] {
    return this.routes.flatMap((r) => r.writers);
  }

  private routesBuffered(): boolean {
    return this.writers().some((w) => w.buffered > 0);
  }

  private async readCommands(blockMs: number): Promise<void> {
    const key = this.commandsKey();
    const args = blockMs > 0 ? ['BLOCK', blockMs] : [];
    const res = await this.blocking.xread('COUNT', 16, ...(args as ['BLOCK', number]), 'STREAMS', key, this.cmdLastId);
    for (const [, entries] of res ?? [])
      for (const [id, fields] of entries) {
        // A command handler may read further commands itself (a rescale waits for its checkpoint).
        if (!isAfter(id, this.cmdLastId)) continue;
        this.cmdLastId = id;
        await this.handleCommand(fields[1]);
      }
  }

  private parseCommand(raw: string | undefined): Command | undefined {
    try {
      const cmd = JSON.parse(raw ?? '') as Command;
      return cmd.attempt === this.task.attempt ? cmd : undefined;
    } catch {
      return undefined;
    }
  }

  private async handleCommand(raw: string | undefined): Promise<void> {
    const cmd = this.parseCommand(raw);
    if (!cmd) return;
    switch (cmd.type) {
      case 'trigger':
        if (this.source) {
          if (cmd.stopAfter) this.stopAfterBarrier = true;
          await this.checkpoint(cmd.checkpoint, cmd.checkpointId, 0, cmd.rescale);
        }
        return;
      case 'abort':
        // A stop-with-savepoint whose savepoint failed: the sources go on.
        this.stopAfterBarrier = false;
        return;
      case 'rescale-rollback':
        if (this.task.joinRescale === cmd.scalingId) this.stopAs('canceled', 'rolled-back', cmd.scalingId);
        return;
      case 'stop':
        this.stopAs('stopped', 'stop');
        return;
      case 'cancel':
        this.stopAs('canceled', 'cancel');
        return;
      case 'rescale-prepare':
        if (cmd.rescale.chainId === this.chain.id && this.keyed.length && !this.task.joinRescale) {
          this.startPreload(cmd.rescale);
          this.startPrecopy(cmd.rescale);
        } else if (cmd.rescale.chainId === this.chain.id) await this.emit({ type: 'precopied', scalingId: cmd.rescale.scalingId });
        return;
      case 'complete':
        if (cmd.rescale && cmd.rescale.scalingId === this.sinkGate) this.sinkGate = undefined;
        this.commitSinks(cmd.checkpoint);
        return;
    }
  }

  /** Ends the subtask on the control plane's word (or a rescale's), saying why; the first reason stands. */
  private stopAs(outcome: 'stopped' | 'canceled', cause: StopCause, scalingId?: number): void {
    if (this.outcome) return;
    this.outcome = outcome;
    this.stopCause = { cause, ...(scalingId !== undefined && { scalingId }) };
  }

  /**
   * Waits for the state a rescale hands this subtask (`expected` parts per operator), loading each slice as it
   * arrives, while handling stop, cancel and the rescale's rollback as usual; undefined when the subtask ends
   * before it got everything (also when the rescale's checkpoint `abortOn` is aborted: its senders may be gone).
   */
  private async receiveHandover(
    scalingId: number,
    expected: Expected,
    abortOn?: number,
    ahead?: { receiver: HandoverReceiver; lastId: string },
  ): Promise<HandoverReceiver | undefined> {
    const { task, deps } = this;
    const receiver = ahead?.receiver ?? new HandoverReceiver(expected);
    const cmdKey = this.commandsKey();
    const key = deps.keys.handover(task.jobId, task.attempt, scalingId, task.index);
    let lastId = ahead?.lastId ?? '0-0';
    this.restoring = true;
    while (!receiver.done && !this.outcome) {
      const res = (await this.blocking.xreadBuffer('COUNT', 16, 'BLOCK', 200, 'STREAMS', cmdKey, key, this.cmdLastId, lastId)) as
        | [Buffer, [Buffer, Buffer[]][]][]
        | null;
      for (const [keyBuf, entries] of res ?? [])
        for (const [idBuf, fields] of entries) {
          const id = idBuf.toString();
          if (keyBuf.toString() === key) {
            lastId = id;
            receiver.apply(fields[1]!, this.loadPart);
            continue;
          }
          this.cmdLastId = id;
          const cmd = this.parseCommand(fields[1]?.toString());
          if (!cmd) continue;
          if (cmd.type === 'rescale-rollback' && cmd.scalingId === scalingId) this.stopAs('canceled', 'rolled-back', scalingId);
          else if (cmd.type === 'abort' && cmd.checkpoint === abortOn) this.stopAs('canceled', 'rescale-aborted', scalingId);
          // While waiting, a subtask takes part in no checkpoint (the rescale holds periodic ones back).
          else if (cmd.type !== 'trigger') await this.handleCommand(fields[1]?.toString());
        }
    }
    this.restoring = false;
    void this.redis.del(key).catch(() => {});
    return receiver.done && !this.outcome ? receiver : undefined;
  }

  /** Loads one handed-over part: a key group's state (or what changed in it since its pre-copy), or a split's offset. */
  private readonly loadPart = (m: HandoverMessage, part: number, data: Uint8Array, delta: boolean): void => {
    const backend = m.scope === 'KEYED' ? this.keyed.find((kv) => kv.vertex.id === m.vertexId)?.backend : undefined;
    if (backend) delta ? backend.applyDelta(part, data) : backend.restore(part, data);
    else if (m.scope === 'OPERATOR') this.source?.offsets.set(part, decodeValue<{ offset: number }>(data).offset);
  };

  /** What rescale `r` gives this subtask that it does not hold yet: key groups per keyed operator, and source splits. */
  private gains(r: RescaleSpec): Expected {
    const { index } = this.task;
    const out: Expected = this.keyed.map((kv) => {
      const next = rangeFor(index, r.parallelism, kv.backend.maxParallelism);
      return { vertexId: kv.vertex.id, scope: 'KEYED', parts: keyGroupsOf(next).filter((kg) => kg < kv.range.start || kg > kv.range.end) };
    });
    const src = this.source;
    if (src) {
      const held = new Set(src.splits);
      const next = EventGenerator.splitsFor(index, r.parallelism, src.gen.config.splits);
      out.push({ vertexId: src.vertex.id, scope: 'OPERATOR', parts: next.filter((x) => !held.has(x)) });
    }
    return out;
  }

  /**
   * A subtask that stays through rescale `r` and gains key groups reads their pre-copies as they come, between
   * batches, into groups it does not process yet; at the barrier only the deltas are left (receiveHandover goes on
   * from where this got to). Without it, a scale-down's survivor would load all it gains while paused.
   */
  private startPreload(r: RescaleSpec): void {
    if (this.task.index >= r.parallelism) return;
    const gains = this.gains(r);
    if (!gains.some((g) => g.parts.length)) return;
    this.preload = { scalingId: r.scalingId, key: this.handoverKey(r, this.task.index), receiver: new HandoverReceiver(gains), lastId: '0-0', gains };
  }

  /** The rescale a preload was for will not come (another one's barrier came): what it loaded is not this subtask's. */
  private dropPreload(): void {
    for (const g of this.preload?.gains ?? []) this.keyed.find((kv) => kv.vertex.id === g.vertexId)?.backend.detach(g.parts);
    this.preload = undefined;
  }

  private async runInputs(): Promise<void> {
    const aligner = (this.aligner = new BarrierAligner(this.inputs.map((c) => c.key)));
    const cmdKey = this.commandsKey();
    while (!this.outcome) {
      const readable = this.inputs.filter((c) => aligner.openChannels.has(c.key) && !aligner.isBlocked(c.key));
      const block = this.routesBuffered() || this.sinks.length ? this.settings.lingerMs * 4 : 200;
      const pre = this.preload;
      const res = (await this.blocking.xreadBuffer(
        'COUNT',
        8,
        'BLOCK',
        block,
        'STREAMS',
        cmdKey,
        ...(pre ? [pre.key] : []),
        ...readable.map((c) => c.key),
        this.cmdLastId,
        ...(pre ? [pre.lastId] : []),
        ...readable.map((c) => c.lastId),
      )) as [Buffer, [Buffer, Buffer[]][]][] | null;
      for (const [keyBuf, entries] of res ?? []) {
        const key = keyBuf.toString();
        if (key === pre?.key) {
          // Pre-copies of groups this subtask will gain: loaded now, between batches, not while it pauses at the barrier.
          for (const [idBuf, fields] of entries) {
            if (this.preload !== pre) break;
            pre.lastId = idBuf.toString();
            pre.receiver.apply(fields[1]!, this.loadPart);
          }
          continue;
        }
        if (key === cmdKey) {
          for (const [idBuf, fields] of entries) {
            const id = idBuf.toString();
            if (!isAfter(id, this.cmdLastId)) continue;
            this.cmdLastId = id;
            await this.handleCommand(fields[1]?.toString());
          }
          continue;
        }
        const ch = readable.find((c) => c.key === key)!;
        for (const [idBuf, fields] of entries) {
          if (aligner.isBlocked(key) || !aligner.openChannels.has(key)) break;
          const id = idBuf.toString();
          const entry = parseEntry(fields);
          ch.lastId = id;
          if (!entry) {
            this.deadLetter(this.chain.id, fields.map((f) => f.toString('base64')), `malformed channel entry ${id} on ${key}`);
            continue;
          }
          if (entry.seq <= ch.lastSeq) continue;
          ch.lastSeq = entry.seq;
          if (entry.type === 'batch') {
            let records: unknown[];
            try {
              records = decodeBatch(entry.data);
            } catch (err) {
              this.deadLetter(this.chain.id, entry.data.toString('base64'), `undecodable batch: ${(err as Error).message}`);
              continue;
            }
            for (const r of records) {
              if (r === null || typeof r !== 'object') this.deadLetter(this.chain.id, r, 'record is not an object');
              else this.processInput(r as Rec);
            }
          } else {
            const t = now();
            const result = entry.type === 'barrier' ? aligner.onBarrier(key, entry.checkpoint, t) : aligner.onEnd(key, t);
            if (result.kind === 'aligned') {
              const id = entry.type === 'barrier' ? entry.checkpointId : this.pendingCheckpointId;
              const rescale = entry.type === 'barrier' ? entry.rescale : this.pendingRescale;
              await this.checkpoint(result.checkpoint, id!, result.alignmentMs, rescale);
            } else if (entry.type === 'barrier') {
              this.pendingCheckpointId = entry.checkpointId;
              this.pendingRescale = entry.rescale;
            }
            if (aligner.allEnded) {
              await this.finish();
              return;
            }
          }
        }
        // Consumers trim what they have read, the last read entry included.
        void this.redis.xtrim(key, 'MINID', nextId(ch.lastId)).catch(() => {});
      }
      await this.afterWork();
    }
  }

  /**
   * A rescale that handed this subtask keys: its sinks hold their writes until the rescale's checkpoint
   * completes, because the old owners' sinks write those keys' values from before the barrier up to then.
   */
  private sinkGate: number | undefined;
  /**
   * A rescale's handover read ahead of its barrier by a subtask that stays and gains key groups: it loads the
   * pre-copies between batches, so that at the barrier only the deltas are left to apply (see startPreload).
   */
  private preload: { scalingId: number; key: string; receiver: HandoverReceiver; lastId: string; gains: Expected } | undefined;
  /** A rescale's pre-copy under way: which key groups went, per keyed operator (see startPrecopy). */
  private precopy: { scalingId: number; stopped: boolean; copied: Map<KeyedVertex, Set<number>> } | undefined;
  private pendingCheckpointId: number | undefined;
  private pendingRescale: RescaleSpec | undefined;
  private sinkFlushing: Promise<unknown> | undefined;
  private sinkFlushFailure: unknown;
  /** The checkpoint this attempt restarted from (0: none of this job's); undefined for a subtask a rescale started. */
  private recoverFrom: number | undefined;
  /** The newest checkpoint known to have completed. */
  private lastCompleted = 0;
  /** Sink commits, in order of their checkpoints. */
  private sinkCommits: Promise<void> = Promise.resolve();
  /** A commit that failed for a passing reason; the next one covers it (commits take every checkpoint up to theirs). */
  private commitFailed = false;

  /** Sinks that write before their checkpoint completes: after a rescale they must wait for the old owners' last writes. */
  private gatedSinks(): boolean {
    return this.sinks.some((s) => s.delivery === 'at-least-once');
  }

  /**
   * Checkpoint n completed: transactional sinks make its output visible. A zombie's commit is refused (the
   * subtask ends, fenced); one that fails for a passing reason (Postgres away) is covered by the next; any
   * other failure fails the subtask.
   */
  private commitSinks(n: number): void {
    this.lastCompleted = Math.max(this.lastCompleted, n);
    this.sinkCommits = this.sinkCommits
      .then(() => Promise.all(this.sinks.map((s) => s.commit(n))))
      .then(
        () => void (this.commitFailed = false),
        (err) => this.onSinkFailure(err, `committing checkpoint ${n}`),
      );
  }

  /** Sorts a sink's failure: fenced ends the subtask, a passing one is logged (and retried), the rest fail it. */
  private onSinkFailure(err: unknown, what: string): void {
    if (err instanceof SinkFencedError) this.outcome ??= 'fenced';
    else if (isTransient(err)) {
      this.commitFailed ||= what.startsWith('committing');
      this.log.warn({ error: (err as Error).message }, `sink: ${what} failed, will retry`);
    } else this.sinkFlushFailure ??= err;
  }

  /** Sends full batches (waiting under backpressure), lingering partial ones, periodic sink flushes and metrics. */
  private async afterWork(): Promise<void> {
    const t = now();
    const lingered = t - this.lastFlush >= this.settings.lingerMs;
    await Promise.all(this.writers().map((w) => w.flush(lingered)));
    if (lingered) this.lastFlush = t;
    if (this.sinkFlushFailure) throw this.sinkFlushFailure;
    if (this.gatedSinks() && this.sinkGate === undefined && !this.sinkFlushing && t - this.lastSinkFlush >= this.sinkFlushMs) {
      // Periodic writes of at-least-once sinks run beside processing; barriers and the end wait for them.
      this.lastSinkFlush = t;
      this.sinkFlushing = Promise.all(this.sinks.map((s) => s.flush()))
        .catch((err) => this.onSinkFailure(err, 'a periodic write'))
        .finally(() => (this.sinkFlushing = undefined));
    }
  }

  /**
   * Reports metrics and progress on a clock of their own, not between batches: a subtask that waits (on a full
   * channel, for a barrier, for state) still says so, and only one whose process or event loop is stuck goes silent.
   */
  private startMetrics(): void {
    this.metricsTimer = setInterval(() => {
      if (this.reporting) return;
      this.reporting = this.reportMetrics(now())
        .catch((err) => this.log.warn({ error: (err as Error).message }, 'reporting metrics failed'))
        .finally(() => (this.reporting = undefined));
    }, this.settings.metricsIntervalMs);
  }

  /** Stops the clock and lets a report in flight finish, before the last one. */
  private async stopMetrics(): Promise<void> {
    clearInterval(this.metricsTimer);
    this.metricsTimer = undefined;
    await this.reporting;
  }

  private async reportMetrics(t: number): Promise<void> {
    const windowMs = t - this.lastMetrics;
    this.lastMetrics = t;
    let waited = 0;
    for (const w of this.writers()) waited = Math.max(waited, w.takeBackpressure());
    const vertices: Record<string, VertexMetrics> = {};
    for (const [id, m] of this.metrics) {
      vertices[id] = { ...m };
      m.recordsIn = m.recordsOut = m.deadLetters = 0;
    }
    let keyGroups: Record<string, [number, number][]> | undefined;
    if (this.keyedHead) {
      const pairs: [number, number][] = [];
      this.keyGroupRecords.forEach((n, kg) => n && pairs.push([kg, n]));
      this.keyGroupRecords.fill(0);
      keyGroups = { [this.keyedHead.vertex.id]: pairs };
    }
    await this.emit({
      type: 'metrics',
      windowMs: Math.round(windowMs),
      backpressure: Math.min(1, waited / windowMs),
      vertices,
      ...(keyGroups && { keyGroups }),
      progress: await this.progress(t),
    });
    if (this.deadLetterSamples.size) {
      const multi = this.redis.multi();
      for (const [vid, lines] of this.deadLetterSamples) {
        const key = this.deps.keys.deadLetters(this.task.jobId, vid);
        multi.lpush(key, ...lines).ltrim(key, 0, 99);
      }
      this.deadLetterSamples.clear();
      await multi.exec();
    }
    const fence = await this.redis.get(this.deps.keys.fence(this.task.jobId));
    if (fence !== String(this.task.attempt)) this.outcome ??= 'fenced';
    if (this.deps.signal?.aborted) this.outcome ??= 'aborted';
  }

  /** Where this subtask stands (see SubtaskProgress): what it has to do and whom it waits for. */
  private async progress(t: number): Promise<SubtaskProgress> {
    const src = this.source;
    let backlog = 0;
    if (src) backlog = this.sourceDue && src.splits.some((x) => src.offsets.get(x)! < src.sizes.get(x)!) ? 1 : 0;
    else if (this.inputs.length) backlog = (await Promise.all(this.inputs.map((c) => this.redis.xlen(c.key)))).reduce((a, b) => a + b, 0);
    const blockedOn = this.routes.flatMap((r) => r.writers.flatMap((w, j) => (w.waiting ? [r.consumers[j]!] : [])));
    const a = this.aligner;
    const aligning = a?.pendingCheckpoint !== undefined && {
      checkpoint: a.pendingCheckpoint,
      forMs: Math.round(t - a.alignmentStartedAt),
      missing: this.inputs.filter((c) => a.openChannels.has(c.key) && !a.isBlocked(c.key)).map((c) => c.producer),
    };
    return { backlog, blockedOn, lastBarrier: this.lastBarrier, ...(aligning && { aligning }), ...(this.restoring && { restoring: true }) };
  }

  /**
   * Takes this subtask's part of checkpoint `n` at its barrier: sends the records before it, pre-commits
   * sinks, copies state (sync), forwards the barrier, then writes the copy to storage while processing
   * goes on (async) and acknowledges.
   */
  private async checkpoint(n: number, checkpointId: number, alignmentMs: number, rescale?: RescaleSpec): Promise<void> {
    const t0 = now();
    const alignedAt = Date.now();
    // Only one checkpoint is in flight at a time: a later barrier means the rescale's checkpoint completed.
    this.sinkGate = undefined;
    await Promise.all(this.writers().map((w) => w.flush(true)));
    if (this.sinkFlushFailure) throw this.sinkFlushFailure;
    // Sinks take what they hold now and write it beside processing, in order after any write in flight;
    // the acknowledgement waits for it (pre-commit).
    const sinkWrites = Promise.all(this.sinks.map((s) => s.preCommit(n)));
    sinkWrites.catch(() => {}); // awaited below; this only keeps an early failure from counting as unhandled
    const chunks: StateChunkData[] = [];
    const vertices: Record<string, VertexAck> = {};
    for (const v of this.chain.vertices) vertices[v.id] = { bytes: 0, keyGroups: 0 };
    const add = (kv: KeyedVertex, parts: Map<number, Buffer>) => {
      const ack = vertices[kv.vertex.id]!;
      for (const [kg, data] of parts) {
        chunks.push({ vertexId: kv.vertex.id, scope: 'KEYED', part: kg, data });
        ack.bytes += data.byteLength;
        ack.keyGroups++;
      }
      return parts;
    };
    // A rescale of this chain: what leaves this subtask goes to its new owners first, the rest after.
    const handedOver = rescale?.chainId === this.chain.id ? this.handOver(rescale, add) : undefined;
    // A rescale's barrier ends its pre-copy (after handOver took the deltas). A periodic checkpoint's barrier may come
    // between the pre-copy and its barrier (it was in flight): copies and tracked changes stay valid across it.
    if (rescale) this.endPrecopy();
    if (rescale && this.preload && this.preload.scalingId !== rescale.scalingId) this.dropPreload();
    // What stays is copied in the background while processing goes on.
    const kept = this.keyed.map((kv) => kv.backend.snapshotAsync(keyGroupsOf(kv.range)).then((parts) => void add(kv, parts)));
    // Awaited in the write below; these only keep an early failure from counting as unhandled.
    for (const p of [handedOver, ...kept]) p?.catch(() => {});
    const src = this.source;
    if (src)
      for (const [split, offset] of src.offsets) {
        const data = encodeValue({ offset });
        chunks.push({ vertexId: src.vertex.id, scope: 'OPERATOR', part: split, data });
        vertices[src.vertex.id]!.bytes += data.byteLength;
      }
    const syncMs = now() - t0;
    await Promise.all(this.writers().map((w) => w.barrier(n, checkpointId, rescale)));
    this.lastBarrier = n;
    const previous = this.pendingWrite;
    this.pendingWrite = (async () => {
      await previous;
      const t1 = now();
      try {
        // A handover Redis did not take means a new owner lacks state: the checkpoint must fail, and the job recover.
        await handedOver;
        await Promise.all(kept);
        await sinkWrites;
        await writeChunks(this.deps.prisma, checkpointId, chunks);
        await this.emit({
          type: 'ack',
          checkpoint: n,
          checkpointId,
          alignmentMs: Math.round(alignmentMs),
          syncMs: Math.round(syncMs),
          asyncMs: Math.round(now() - t1),
          vertices,
        });
      } catch (err) {
        // What a sink could not pre-commit stays with it, for the next checkpoint.
        if (err instanceof SinkFencedError) this.outcome ??= 'fenced';
        await this.emit({ type: 'decline', checkpoint: n, checkpointId, reason: `writing its part failed: ${(err as Error).message}` }).catch(() => {});
      }
    })();
    if (rescale) await this.applyRescale(n, rescale, t0, alignedAt);
  }

  /** Of the parts (key groups or splits) this subtask holds, those that go to another subtask, by new owner. */
  private leaving(parts: Iterable<number>, newOwner: (part: number) => number): Map<number, number[]> {
    const leaving = groupBy(parts, newOwner);
    leaving.delete(this.task.index);
    return leaving;
  }

  /** The key groups of `kv` that rescale `r` moves away from this subtask, by new owner. */
  private leavingKeyGroups(kv: KeyedVertex, r: RescaleSpec): Map<number, number[]> {
    return this.leaving(keyGroupsOf(kv.range), (kg) => subtaskFor(kg, r.parallelism, kv.backend.maxParallelism));
  }

  private handoverKey(r: RescaleSpec, to: number): string {
    return this.deps.keys.handover(this.task.jobId, this.task.attempt, r.scalingId, to);
  }

  /**
   * Ahead of rescale `r`'s barrier (DESIGN §6, pre-copy): sends the key groups that will leave this subtask to
   * their new owners while processing goes on, recording which keys are touched after each group's copy, so
   * that at the barrier only those go (see handOver). Reports `precopied` when all went.
   */
  private startPrecopy(r: RescaleSpec): void {
    const state = { scalingId: r.scalingId, stopped: false, copied: new Map<KeyedVertex, Set<number>>() };
    this.precopy = state;
    void (async () => {
      for (const kv of this.keyed) {
        const copied = new Set<number>();
        state.copied.set(kv, copied);
        const leaving = this.leavingKeyGroups(kv, r);
        kv.backend.trackChanges([...leaving.values()].flat());
        for (const [to, kgs] of leaving) {
          await sendHandover(
            this.redis,
            this.handoverKey(r, to),
            { from: this.task.index, vertexId: kv.vertex.id, scope: 'KEYED' },
            kgs,
            (kg) => {
              const data = kv.backend.copyTracked(kg);
              return data && [kg, data];
            },
            {
              precopy: true,
              between: () => new Promise((resolve) => setImmediate(resolve)),
              stop: () => state.stopped,
              onSent: (parts) => parts.forEach((kg) => copied.add(kg)),
            },
          );
          if (state.stopped) return;
        }
      }
      await this.emit({ type: 'precopied', scalingId: r.scalingId });
    })().catch((err) => {
      // Nothing counts as copied then: the barrier sends every group whole.
      state.copied.clear();
      this.log.warn({ scalingId: r.scalingId, error: (err as Error).message }, 'pre-copy failed; the barrier sends the groups whole');
    });
  }

  /** Ends a pre-copy: its rescale's barrier came. */
  private endPrecopy(): void {
    if (!this.precopy) return;
    this.precopy.stopped = true;
    this.precopy = undefined;
    for (const kv of this.keyed) kv.backend.stopTracking();
  }

  /**
   * Sends the key groups and source splits that rescale `r` takes away from this subtask to their new owners
   * (see handover.ts) and takes them out of its state: from the barrier on, no record for them reaches it. A
   * group pre-copied goes as a delta; the rest whole, also into the checkpoint. The pre-copied groups' whole
   * state goes into the checkpoint in the background; the returned promise settles once all is sent and added.
   */
  private handOver(r: RescaleSpec, add: (kv: KeyedVertex, parts: Map<number, Buffer>) => void): Promise<unknown> {
    const { task } = this;
    // The pre-copy cannot go on meanwhile: everything up to the sends below runs without yielding.
    const pre = this.precopy?.scalingId === r.scalingId ? this.precopy : undefined;
    const work: Promise<unknown>[] = [];
    const send = (to: number, vertexId: string, scope: 'KEYED' | 'OPERATOR', covers: number[], encode: (part: number) => HandoverPart | undefined) =>
      work.push(sendHandover(this.redis, this.handoverKey(r, to), { from: task.index, vertexId, scope }, covers, encode));
    for (const kv of this.keyed) {
      const copied = pre?.copied.get(kv) ?? new Set<number>();
      const leaving = this.leavingKeyGroups(kv, r);
      for (const [to, kgs] of leaving)
        send(to, kv.vertex.id, 'KEYED', kgs, (kg) => {
          if (copied.has(kg)) return [kg, kv.backend.delta(kg), true];
          const data = kv.backend.snapshot([kg]).get(kg);
          if (data) add(kv, new Map([[kg, data]]));
          return data && [kg, data];
        });
      const encode = kv.backend.detach([...leaving.values()].flat());
      work.push(
        (async () => {
          for (const kg of copied) {
            const data = encode(kg);
            if (data) add(kv, new Map([[kg, data]]));
            await new Promise((resolve) => setImmediate(resolve));
          }
        })(),
      );
    }
    const src = this.source;
    if (src) {
      const owner = new Map<number, number>();
      for (let j = 0; j < r.parallelism; j++) for (const x of EventGenerator.splitsFor(j, r.parallelism, src.gen.config.splits)) owner.set(x, j);
      for (const [to, splits] of this.leaving(src.splits, (x) => owner.get(x)!))
        send(to, src.vertex.id, 'OPERATOR', splits, (x) => (src.offsets.has(x) ? [x, encodeValue({ offset: src.offsets.get(x) })] : undefined));
    }
    return Promise.all(work);
  }

  /**
   * After barrier n of a rescale of chain R to p′ (DESIGN §6): producers into R route with p′, consumers of R
   * read from p′ producers, and R's own subtasks load the key groups (or source splits) their new range gains
   * as the old owners hand them over (see handOver), without waiting for n to complete; those with index ≥ p′ stop.
   */
  private async applyRescale(n: number, r: RescaleSpec, alignedMono: number, alignedAt: number): Promise<void> {
    const { task } = this;
    const target = this.chains.find((c) => c.id === r.chainId);
    if (!target) return;
    this.plan = rescaledPlan(this.plan, target, r.parallelism, r.scalingId);
    this.chains = buildChains(this.graph, this.plan);
    if (target.id === this.chain.id && task.index >= r.parallelism) {
      // Scaled away: its state went to the new owners and is in the checkpoint (close() waits for the write).
      this.stopAs('stopped', 'scaled-away', r.scalingId);
      return;
    }
    // The barrier went out on every old channel and came in on every old input: from here the new ones carry records.
    this.syncChannels();
    if (target.id !== this.chain.id) return;
    // The new ranges and splits; what this subtask keeps is processed on at once, only what it gains waits for its state.
    const gained = this.gains(r);
    for (const kv of this.keyed) kv.range = rangeFor(task.index, r.parallelism, kv.backend.maxParallelism);
    const src = this.source;
    if (src) src.splits = EventGenerator.splitsFor(task.index, r.parallelism, src.gen.config.splits);
    const ahead = this.preload?.scalingId === r.scalingId ? this.preload : undefined;
    this.preload = undefined;
    const t1 = now();
    if (this.gatedSinks() && gained.some((g) => g.scope === 'KEYED' && g.parts.length > 0)) this.sinkGate = r.scalingId;
    const loaded = await this.receiveHandover(r.scalingId, gained, n, ahead);
    // A failed rescale checkpoint makes the control plane recover the whole job; this attempt is over.
    if (!loaded) return void (this.outcome ??= 'canceled');
    if (src) {
      for (const split of [...src.offsets.keys()]) if (!src.splits.includes(split)) src.offsets.delete(split);
      src.sizes = new Map(src.splits.map((x) => [x, src.gen.splitSize(x)]));
      src.rate = src.ratePerSplit * src.splits.length;
    }
    this.task.parallelism = r.parallelism;
    this.chain = this.chains.find((c) => c.id === this.chain.id)!;
    this.deps.onRescaled?.();
    await this.emit({
      type: 'rescaled',
      scalingId: r.scalingId,
      keyGroupsLoaded: loaded.parts,
      bytesLoaded: loaded.bytes,
      restoreMs: Math.round(now() - t1),
      pauseMs: Math.round(now() - alignedMono),
      alignedAt,
      runningAt: Date.now(),
    });
  }

  private async finish(): Promise<void> {
    await Promise.all(this.writers().map((w) => w.end()));
    while (this.sinkGate !== undefined && !this.outcome) await this.readCommands(200);
    await this.sinkFlushing;
    if (this.sinkFlushFailure) throw this.sinkFlushFailure;
    await this.pendingWrite;
    await this.sinkCommits;
    if (this.sinkFlushFailure) throw this.sinkFlushFailure;
    await Promise.all(this.sinks.map((s) => s.finish(this.lastCompleted)));
    await this.stopMetrics();
    await this.reportMetrics(now());
    await this.emit({ type: 'finished' });
    this.outcome = 'finished';
  }

  async close(): Promise<void> {
    await this.pendingWrite.catch(() => {});
    await this.sinkCommits;
    // Stopped after a savepoint whose commit failed for a passing reason: nothing would commit it later.
    for (let i = 0; this.outcome === 'stopped' && this.commitFailed && i < 5; i++) {
      await new Promise((r) => setTimeout(r, 500 * 2 ** i));
      this.commitSinks(this.lastCompleted);
      await this.sinkCommits;
    }
    await this.stopMetrics();
    if (this.outcome && this.outcome !== 'finished') {
      await this.reportMetrics(now()).catch(() => {});
      // A subtask that ends without the control plane's or a rescale's word (its worker closing) says so too: a failure.
      if (this.outcome !== 'fenced') await this.emit({ type: 'stopped', ...(this.stopCause ?? { cause: 'aborted' }) }).catch(() => {});
    }
    await Promise.all(this.sinks.map((s) => s.close()));
    this.blocking.disconnect();
  }
}

/** The smallest stream entry id after `id` (ids are `ms-seq`). */
function nextId(id: string): string {
  const [ms, seq] = id.split('-');
  return `${ms}-${Number(seq) + 1}`;
}

/** Whether stream entry id `a` comes after `b` (ids are `ms-seq`). */
function isAfter(a: string, b: string): boolean {
  const [am, as] = a.split('-').map(Number);
  const [bm, bs] = b.split('-').map(Number);
  return am! > bm! || (am === bm && as! > bs!);
}

function groupBy<T>(items: Iterable<T>, by: (item: T) => number): Map<number, T[]> {
  const out = new Map<number, T[]>();
  for (const item of items) {
    const k = by(item);
    const list = out.get(k);
    if (list) list.push(item);
    else out.set(k, [item]);
  }
  return out;
}

function isKey(v: unknown): v is Key {
  const t = typeof v;
  return t === 'string' || t === 'number' || t === 'bigint' || t === 'boolean';
}

function safeJson(v: unknown): unknown {
  try {
    return JSON.parse(JSON.stringify(v, (_, x) => (typeof x === 'bigint' ? x.toString() : x)) ?? 'null');
  } catch {
    return String(v);
  }
}
