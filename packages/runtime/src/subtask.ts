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
  keyGroupFor,
  KeyedStateBackend,
  keyGroupsOf,
  logSinkSettings,
  operatorSpec,
  postgresSinkSettings,
  producersFor,
  rangeFor,
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
import { LogSink } from './connectors/logSink.ts';
import { PostgresSink } from './connectors/postgresSink.ts';
import type { Sink } from './connectors/sink.ts';
import type { RedisKeys } from './keys.ts';
import type { Command, TaskData, VertexAck, VertexMetrics, WorkerEvent } from './protocol.ts';
import { withScripts, type KeyflowRedis } from './scripts.ts';

export interface RuntimeSettings extends ChannelSettings {
  /** How long a partial batch may wait before it is sent. */
  lingerMs: number;
  metricsIntervalMs: number;
}

export const defaultRuntimeSettings: RuntimeSettings = { batchSize: 4096, bound: 64, lingerMs: 5, metricsIntervalMs: 500 };

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
  log?: (msg: string, extra?: object) => void;
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
  lastId: string;
  lastSeq: number;
  /** The input edge's key field and the keyed head's maxParallelism, when the head is keyed. */
}

interface RouteTarget {
  edge: Edge;
  writers: ChannelWriter[];
  maxParallelism: number;
  parallelism: number;
  rr: number;
}

const now = () => performance.now();

class Subtask {
  private readonly settings: RuntimeSettings;
  private readonly redis: KeyflowRedis;
  private readonly blocking: Redis;
  private graph!: Graph;
  private plan!: JobPlan;
  private chain!: Chain;
  private head!: Output;
  private routes: RouteTarget[] = [];
  private sinks: Sink[] = [];
  private keyed: KeyedVertex[] = [];
  private inputs: InputChannel[] = [];
  private source: { vertex: Vertex; gen: EventGenerator; splits: number[]; offsets: Map<number, number>; rate: number } | undefined;
  private readonly metrics = new Map<string, VertexMetrics>();
  private readonly deadLetterSamples = new Map<string, string[]>();
  private cmdLastId = '0-0';
  private lastFlush = now();
  private lastMetrics = now();
  private lastCommandRead = 0;
  private lastSinkFlush = now();
  private sinkFlushMs = 1000;
  private stopAfterBarrier = false;
  private outcome: SubtaskOutcome | undefined;
  private pendingWrite: Promise<void> = Promise.resolve();
  private keyField: string | undefined;
  private keyedHead: KeyedVertex | undefined;

  constructor(
    private readonly task: TaskData,
    private readonly deps: SubtaskDeps,
  ) {
    this.settings = { ...defaultRuntimeSettings, ...deps.settings };
    this.redis = withScripts(deps.redis);
    this.blocking = deps.redis.duplicate();
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
    this.plan = job.plan as unknown as JobPlan;
    const chains = buildChains(this.graph, this.plan);
    const chain = chains.find((c) => c.id === task.vertexId);
    if (!chain) throw new Error(`no chain headed by ${task.vertexId} in job ${task.jobId}`);
    this.chain = chain;
    for (const v of chain.vertices) this.metrics.set(v.id, { recordsIn: 0, recordsOut: 0, deadLetters: 0 });

    const last = await this.redis.xrevrange(deps.keys.commands(task.jobId), '+', '-', 'COUNT', 1);
    this.cmdLastId = last[0]?.[0] ?? '0-0';

    this.buildRoutes(chains);
    this.head = this.buildChainOutputs();
    this.buildInputs(chains);
    const started = now();
    const restored = task.restoreFrom !== undefined ? await this.restore(task.restoreFrom) : { bytes: 0, keyGroups: 0 };
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

  private buildRoutes(chains: Chain[]): void {
    const { task, deps } = this;
    for (const edge of this.chain.outputs) {
      const consumer = chainOf(chains, edge.to)!;
      const edgeIndex = this.graph.edges.indexOf(edge);
      const writers = consumersFor(edge, task.index, consumer.parallelism).map(
        (j) => new ChannelWriter(this.redis, deps.keys.channel(task.jobId, task.attempt, edgeIndex, task.index, j), this.settings),
      );
      this.routes.push({ edge, writers, parallelism: consumer.parallelism, maxParallelism: this.vertexPlan(edge.to).maxParallelism, rr: task.index });
    }
  }

  private buildInputs(chains: Chain[]): void {
    const { task, deps } = this;
    for (const edge of this.chain.inputs) {
      const producer = chainOf(chains, edge.from)!;
      const edgeIndex = this.graph.edges.indexOf(edge);
      for (const i of producersFor(edge, task.index, producer.parallelism))
        this.inputs.push({ key: deps.keys.channel(task.jobId, task.attempt, edgeIndex, i, task.index), lastId: '0-0', lastSeq: 0 });
    }
    this.keyField = this.chain.inputs.find((e) => e.partitioning === 'hash')?.key;
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
    const routes = this.routes;
    let next: Output = {
      emit: (rec) => {
        for (const r of routes) this.route(r, rec);
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
        this.source = {
          vertex: v,
          gen: new EventGenerator(s),
          splits,
          offsets: new Map(splits.map((x) => [x, 0])),
          rate: (s.rate * splits.length) / s.splits,
        };
        next = counted;
      } else {
        let backend: KeyedStateBackend | undefined;
        if (kind === 'keyed') {
          const { maxParallelism, parallelism } = this.vertexPlan(v.id);
          backend = new KeyedStateBackend(maxParallelism);
          const kv = { vertex: v, backend, range: rangeFor(task.index, parallelism, maxParallelism) };
          this.keyed.push(kv);
          if (i === 0) this.keyedHead = kv;
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
      return new PostgresSink(s, this.deps.databaseUrl, dl);
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
    }
    this.head.emit(rec);
  }

  private async restore(checkpointId: number): Promise<{ bytes: number; keyGroups: number }> {
    let bytes = 0;
    let keyGroups = 0;
    for (const kv of this.keyed) {
      const chunks = await readChunks(this.deps.prisma, checkpointId, kv.vertex.id, 'KEYED', kv.range.start, kv.range.end);
      for (const c of chunks) {
        kv.backend.restore(c.part, c.data);
        bytes += c.data.byteLength;
        keyGroups++;
      }
    }
    const src = this.source;
    if (src) {
      const first = src.splits[0]!;
      const chunks = await readChunks(this.deps.prisma, checkpointId, src.vertex.id, 'OPERATOR', first, src.splits[src.splits.length - 1]!);
      for (const c of chunks) {
        src.offsets.set(c.part, decodeValue<{ offset: number }>(c.data).offset);
        bytes += c.data.byteLength;
      }
    }
    return { bytes, keyGroups };
  }

  async run(): Promise<SubtaskOutcome> {
    if (this.source) await this.runSource();
    else await this.runInputs();
    return this.outcome ?? 'finished';
  }

  private async runSource(): Promise<void> {
    const src = this.source!;
    const { gen, splits, offsets } = src;
    const sizes = new Map(splits.map((s) => [s, gen.splitSize(s)]));
    let started = now();
    let emitted = 0;
    while (!this.outcome) {
      let wait = 0;
      let budget = this.settings.batchSize;
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
      // Commands are read between batches: blocking while there is time to wait, else every linger period.
      if (wait > 0 || now() - this.lastCommandRead >= this.settings.lingerMs) {
        this.lastCommandRead = now();
        await this.readCommands(this.routesBuffered() ? Math.min(wait, this.settings.lingerMs) : Math.min(wait, 200));
      }
      if (this.outcome || this.stopAfterBarrier) continue;
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

  private routesBuffered(): boolean {
    return this.routes.some((r) => r.writers.some((w) => w.buffered > 0));
  }

  private async readCommands(blockMs: number): Promise<void> {
    const key = this.deps.keys.commands(this.task.jobId);
    const args = blockMs > 0 ? ['BLOCK', blockMs] : [];
    const res = await this.blocking.xread('COUNT', 16, ...(args as ['BLOCK', number]), 'STREAMS', key, this.cmdLastId);
    for (const [, entries] of res ?? []) for (const [id, fields] of entries) {
      this.cmdLastId = id;
      await this.handleCommand(fields[1]);
    }
  }

  private async handleCommand(raw: string | undefined): Promise<void> {
    let cmd: Command;
    try {
      cmd = JSON.parse(raw ?? '');
    } catch {
      return;
    }
    if (cmd.attempt !== this.task.attempt) return;
    switch (cmd.type) {
      case 'trigger':
        if (this.source) {
          await this.checkpoint(cmd.checkpoint, cmd.checkpointId, 0);
          if (cmd.stopAfter) this.stopAfterBarrier = true;
        }
        return;
      case 'stop':
        this.outcome = 'stopped';
        return;
      case 'cancel':
        this.outcome = 'canceled';
        return;
      case 'complete':
      case 'abort':
        return;
    }
  }

  private async runInputs(): Promise<void> {
    const aligner = new BarrierAligner(this.inputs.map((c) => c.key));
    const cmdKey = this.deps.keys.commands(this.task.jobId);
    while (!this.outcome) {
      const readable = this.inputs.filter((c) => aligner.openChannels.has(c.key) && !aligner.isBlocked(c.key));
      const block = this.routesBuffered() || this.sinks.length ? this.settings.lingerMs * 4 : 200;
      const res = (await this.blocking.xreadBuffer(
        'COUNT',
        8,
        'BLOCK',
        block,
        'STREAMS',
        cmdKey,
        ...readable.map((c) => c.key),
        this.cmdLastId,
        ...readable.map((c) => c.lastId),
      )) as [Buffer, [Buffer, Buffer[]][]][] | null;
      for (const [keyBuf, entries] of res ?? []) {
        const key = keyBuf.toString();
        if (key === cmdKey) {
          for (const [id, fields] of entries) {
            this.cmdLastId = id.toString();
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
              await this.checkpoint(result.checkpoint, id!, result.alignmentMs);
            } else if (entry.type === 'barrier') this.pendingCheckpointId = entry.checkpointId;
            if (aligner.allEnded) {
              await this.finish();
              return;
            }
          }
        }
        // Consumers trim what they have read: entries before the last read one are gone for good.
        void this.redis.xtrim(key, 'MINID', ch.lastId).catch(() => {});
      }
      await this.afterWork();
    }
  }

  private pendingCheckpointId: number | undefined;
  private sinkFlushing: Promise<unknown> | undefined;
  private sinkFlushFailure: unknown;

  /** Writes everything the sinks hold, after any periodic write still running. */
  private async flushSinks(): Promise<void> {
    await this.sinkFlushing;
    if (this.sinkFlushFailure) throw this.sinkFlushFailure;
    await Promise.all(this.sinks.map((s) => s.flush()));
  }

  /** Sends full batches (waiting under backpressure), lingering partial ones, periodic sink flushes and metrics. */
  private async afterWork(): Promise<void> {
    const t = now();
    const lingered = t - this.lastFlush >= this.settings.lingerMs;
    await Promise.all(this.routes.flatMap((r) => r.writers.map((w) => w.flush(lingered))));
    if (lingered) this.lastFlush = t;
    if (this.sinkFlushFailure) throw this.sinkFlushFailure;
    if (this.sinks.length && !this.sinkFlushing && t - this.lastSinkFlush >= this.sinkFlushMs) {
      // Periodic sink writes run beside processing; barriers and the end wait for them (flushSinks).
      this.lastSinkFlush = t;
      this.sinkFlushing = Promise.all(this.sinks.map((s) => s.flush()))
        .catch((err) => void (this.sinkFlushFailure = err))
        .finally(() => (this.sinkFlushing = undefined));
    }
    if (t - this.lastMetrics >= this.settings.metricsIntervalMs) await this.reportMetrics(t);
  }

  private async reportMetrics(t: number): Promise<void> {
    const windowMs = t - this.lastMetrics;
    this.lastMetrics = t;
    let waited = 0;
    for (const r of this.routes) for (const w of r.writers) waited = Math.max(waited, w.takeBackpressure());
    const vertices: Record<string, VertexMetrics> = {};
    for (const [id, m] of this.metrics) {
      vertices[id] = { ...m };
      m.recordsIn = m.recordsOut = m.deadLetters = 0;
    }
    await this.emit({ type: 'metrics', windowMs: Math.round(windowMs), backpressure: Math.min(1, waited / windowMs), vertices });
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

  /**
   * Takes this subtask's part of checkpoint `n` at its barrier: sends the records before it, pre-commits
   * sinks, copies state (sync), forwards the barrier, then writes the copy to storage while processing
   * goes on (async) and acknowledges.
   */
  private async checkpoint(n: number, checkpointId: number, alignmentMs: number): Promise<void> {
    const t0 = now();
    await Promise.all(this.routes.flatMap((r) => r.writers.map((w) => w.flush(true))));
    await this.flushSinks();
    const chunks: StateChunkData[] = [];
    const vertices: Record<string, VertexAck> = {};
    for (const v of this.chain.vertices) vertices[v.id] = { bytes: 0, keyGroups: 0 };
    for (const kv of this.keyed) {
      const ack = vertices[kv.vertex.id]!;
      for (const [kg, data] of kv.backend.snapshot(keyGroupsOf(kv.range))) {
        chunks.push({ vertexId: kv.vertex.id, scope: 'KEYED', part: kg, data });
        ack.bytes += data.byteLength;
        ack.keyGroups++;
      }
    }
    const src = this.source;
    if (src)
      for (const [split, offset] of src.offsets) {
        const data = encodeValue({ offset });
        chunks.push({ vertexId: src.vertex.id, scope: 'OPERATOR', part: split, data });
        vertices[src.vertex.id]!.bytes += data.byteLength;
      }
    const syncMs = now() - t0;
    await Promise.all(this.routes.flatMap((r) => r.writers.map((w) => w.barrier(n, checkpointId))));
    const previous = this.pendingWrite;
    this.pendingWrite = (async () => {
      await previous;
      const t1 = now();
      try {
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
        await this.emit({ type: 'decline', checkpoint: n, checkpointId, reason: `state write failed: ${(err as Error).message}` }).catch(() => {});
      }
    })();
  }

  private async finish(): Promise<void> {
    await Promise.all(this.routes.flatMap((r) => r.writers.map((w) => w.end())));
    await this.flushSinks();
    await this.pendingWrite;
    await this.reportMetrics(now());
    await this.emit({ type: 'finished' });
    this.outcome = 'finished';
  }

  async close(): Promise<void> {
    await this.pendingWrite.catch(() => {});
    if (this.outcome && this.outcome !== 'finished') {
      await this.reportMetrics(now()).catch(() => {});
      if (this.outcome === 'stopped' || this.outcome === 'canceled') await this.emit({ type: 'stopped' }).catch(() => {});
    }
    await Promise.all(this.sinks.map((s) => s.close()));
    this.blocking.disconnect();
  }
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
