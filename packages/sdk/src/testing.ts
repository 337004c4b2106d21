import {
  bindOperator,
  getField,
  guarded,
  isKey,
  isOperatorDefinition,
  keyGroupFor,
  keyGroupsOf,
  KeyedStateBackend,
  NO_WATERMARK,
  rangeFor,
  TIMER_STATE,
  UPPER_BOUND_MAX_PARALLELISM,
  type Key,
  type KeyGroupRange,
  type ListState,
  type MapState,
  type OperatorContext,
  type OperatorDefinition,
  type Output,
  type Rec,
  type RecordTime,
  type ReducingState,
  type StateDescriptor,
  type StateSpec,
  type StreamOperator,
  type TimeDomain,
  type ValueState,
} from '@keyflow/core';
import type { z } from 'zod';

/** A record the operator emitted, with the event time it carries downstream (undefined: none). */
export interface Emitted {
  readonly record: Rec;
  readonly timestamp: number | undefined;
}

/** A record sent to the dead-letter or the late output, with the reason. */
export interface Rejected {
  readonly record: unknown;
  readonly reason: string;
}

/** A line the operator logged. */
export interface LogLine {
  readonly level: 'info' | 'warn' | 'error';
  readonly message: string;
  readonly fields?: Record<string, unknown>;
}

export interface HarnessOptions<Settings = unknown> {
  /** The settings as a pipeline holds them, before parsing: defaults apply, and settings that do not parse are refused. */
  settings?: Settings;
  /** Key groups of the operator (default 128); fixed for its life, as in a job. */
  maxParallelism?: number;
  /** Which subtask the harness runs (default 0 of 1): it owns the key groups `rangeFor(index, parallelism)` gives. */
  subtask?: { index: number; parallelism: number };
  /** The field `process` reads the key from when given none, as a hash edge's key (a join may key each input by its own). */
  keyField?: string | { left: string; right: string };
  /** The wall clock at the start (default 0; a restored harness goes on from its snapshot's). */
  processingTime?: number;
}

export interface ProcessOptions {
  /** The record's key (a keyed operator needs one, or the harness's `keyField`). */
  key?: Key;
  /** The record's event time; none by default. */
  timestamp?: number;
  /** Which input of a two-input operator it comes by (default left). */
  input?: 'left' | 'right';
}

/**
 * A harness's state at one moment: its key groups' bytes, its watermark and its clock. Opaque: give it to
 * `OperatorHarness.restore` or `OperatorHarness.rescale`.
 */
export interface HarnessSnapshot {
  readonly kind: string;
  readonly maxParallelism: number;
  readonly subtask: { readonly index: number; readonly parallelism: number };
  readonly keyGroups: ReadonlyMap<number, Uint8Array>;
  readonly watermark: number;
  readonly processingTime: number;
}

/** What one declared state holds for a key: a value, a map, a list, a reduced value. */
export type StateValue<D> =
  D extends StateDescriptor<ValueState<infer T>>
    ? T | undefined
    : D extends StateDescriptor<MapState<infer K, infer V>>
      ? Map<K, V>
      : D extends StateDescriptor<ListState<infer T>>
        ? T[]
        : D extends StateDescriptor<ReducingState<infer T>>
          ? T | undefined
          : never;

/** A key's declared state, by name, copied out (changing it changes nothing in the operator). */
export type StateValues<S extends StateSpec> = { [N in keyof S]: StateValue<S[N]> };

type RestoreOptions<Settings> = Omit<HarnessOptions<Settings>, 'maxParallelism'>;
type RescaleOptions<Settings> = Omit<HarnessOptions<Settings>, 'maxParallelism' | 'subtask'>;

const MAX_P = 128;

/**
 * One subtask of an SDK operator, run in memory as the runtime runs it (Flink's KeyedOneInputStreamOperatorTestHarness):
 * the same binding, keyed state backend, timers and dead-letter handling, with the key, event time, watermark and
 * wall clock in the test's hands. Snapshots restore into a new harness, and split over new subtasks as a live
 * rescale splits them.
 */
export class OperatorHarness<Schema extends z.ZodType = z.ZodType, S extends StateSpec = StateSpec> {
  private readonly op: StreamOperator;
  private readonly backend: KeyedStateBackend | undefined;
  private readonly range: KeyGroupRange;
  private readonly time: RecordTime = { timestamp: undefined, watermark: NO_WATERMARK };
  private now: number;
  private readonly out: Output;
  private readonly emitted: Emitted[] = [];
  private readonly sides = new Map<string, Emitted[]>();
  private readonly dead: Rejected[] = [];
  private readonly tooLate: Rejected[] = [];
  private readonly lines: LogLine[] = [];

  private constructor(
    readonly definition: OperatorDefinition<Schema, S>,
    private readonly options: HarnessOptions<z.input<Schema>>,
  ) {
    if (!isOperatorDefinition(definition)) throw new Error('OperatorHarness runs an operator made by defineOperator');
    const maxP = options.maxParallelism ?? MAX_P;
    const { index, parallelism } = options.subtask ?? { index: 0, parallelism: 1 };
    if (!Number.isInteger(maxP) || maxP < 1 || maxP > UPPER_BOUND_MAX_PARALLELISM)
      throw new Error(`maxParallelism must be a whole number from 1 to ${UPPER_BOUND_MAX_PARALLELISM}, not ${maxP}`);
    if (!Number.isInteger(parallelism) || parallelism < 1 || parallelism > maxP)
      throw new Error(`parallelism must be a whole number from 1 to maxParallelism (${maxP}), not ${parallelism}`);
    if (!Number.isInteger(index) || index < 0 || index >= parallelism) throw new Error(`subtask index ${index} is not one of 0…${parallelism - 1}`);
    this.range = rangeFor(index, parallelism, maxP);
    this.now = options.processingTime ?? 0;
    if (definition.inputs === 'keyed') this.backend = new KeyedStateBackend(maxP);

    this.out = {
      emit: (record) => void this.emitted.push({ record, timestamp: this.time.timestamp }),
      emitTo: (name, record) => void this.sideList(name).push({ record, timestamp: this.time.timestamp }),
    };
    const log = (level: LogLine['level']) => (message: string, fields?: Record<string, unknown>) =>
      void this.lines.push(fields === undefined ? { level, message } : { level, message, fields });
    const ctx: OperatorContext = {
      ...(this.backend && { backend: this.backend, owns: (kg: number) => kg >= this.range.start && kg <= this.range.end }),
      deadLetter: (record, reason) => void this.dead.push({ record, reason }),
      late: (record, reason) => void this.tooLate.push({ record, reason }),
      time: this.time,
      clock: () => this.now,
      log: { info: log('info'), warn: log('warn'), error: log('error') },
      subtask: { index, parallelism },
    };
    // As the runtime makes it: a throw on a record dead-letters it; bad settings or a throw in open throw here.
    this.op = guarded(definition.kind, bindOperator(definition as unknown as OperatorDefinition, options.settings, ctx), ctx);
  }

  /** A harness running `def` with no state yet. */
  static create<Schema extends z.ZodType, S extends StateSpec>(
    def: OperatorDefinition<Schema, S>,
    options: HarnessOptions<z.input<Schema>> = {},
  ): OperatorHarness<Schema, S> {
    return new OperatorHarness(def, options);
  }

  /**
   * A new harness with a snapshot's state, timers and watermark, as a recovery restores a subtask: by default the
   * same subtask at the same parallelism, its clock where the snapshot's was.
   */
  static restore<Schema extends z.ZodType, S extends StateSpec>(
    def: OperatorDefinition<Schema, S>,
    snapshot: HarnessSnapshot,
    options: RestoreOptions<z.input<Schema>> = {},
  ): OperatorHarness<Schema, S> {
    checkSnapshots(def, [snapshot]);
    const h = new OperatorHarness(def, {
      ...options,
      maxParallelism: snapshot.maxParallelism,
      subtask: options.subtask ?? snapshot.subtask,
      processingTime: options.processingTime ?? snapshot.processingTime,
    });
    const foreign = [...snapshot.keyGroups.keys()].filter((kg) => !h.ownsGroup(kg));
    if (foreign.length)
      throw new Error(
        `the snapshot holds key groups ${foreign.join(', ')}, which subtask ${h.subtask.index} of ${h.subtask.parallelism} does not own: use rescale`,
      );
    h.load([snapshot]);
    return h;
  }

  /**
   * One harness per subtask of `parallelism`, from the snapshots of every subtask at the old parallelism, as a live
   * rescale splits and merges state: each gets exactly the key groups its range owns, with their timers, at the
   * lowest of the old watermarks (the runtime's choice: no timer fires early) and the latest of the old clocks.
   */
  static rescale<Schema extends z.ZodType, S extends StateSpec>(
    def: OperatorDefinition<Schema, S>,
    snapshots: readonly HarnessSnapshot[],
    parallelism: number,
    options: RescaleOptions<z.input<Schema>> = {},
  ): OperatorHarness<Schema, S>[] {
    checkSnapshots(def, snapshots);
    const old = snapshots[0]!.subtask.parallelism;
    const indexes = new Set(snapshots.map((s) => s.subtask.index));
    if (snapshots.some((s) => s.subtask.parallelism !== old) || indexes.size !== snapshots.length || snapshots.length !== old)
      throw new Error(
        `a rescale needs one snapshot from each subtask of the old parallelism, or state is lost: got subtasks ${snapshots
          .map((s) => `${s.subtask.index} of ${s.subtask.parallelism}`)
          .join(', ')}`,
      );
    const processingTime = options.processingTime ?? Math.max(...snapshots.map((s) => s.processingTime));
    return Array.from({ length: parallelism }, (_, index) => {
      const h = new OperatorHarness(def, {
        ...options,
        maxParallelism: snapshots[0]!.maxParallelism,
        subtask: { index, parallelism },
        processingTime,
      });
      h.load(snapshots);
      return h;
    });
  }

  /** This harness's subtask: its index and the operator's parallelism. */
  get subtask(): { index: number; parallelism: number } {
    return { index: this.options.subtask?.index ?? 0, parallelism: this.options.subtask?.parallelism ?? 1 };
  }

  /** The operator's input watermark. */
  get watermark(): number {
    return this.time.watermark;
  }

  /** The wall clock as the operator sees it. */
  get processingTime(): number {
    return this.now;
  }

  /** Whether this subtask owns `key`'s key group (always, for an operator without keyed input). */
  owns(key: Key): boolean {
    return !this.backend || this.ownsGroup(keyGroupFor(key, this.backend.maxParallelism));
  }

  /**
   * Processes one record, scoped to its key as the runtime scopes it. A record whose key field holds no key is
   * dead-lettered (as the runtime does); one whose key group this subtask does not own is refused with an error.
   */
  process(record: Rec, options: ProcessOptions = {}): void {
    const kind = this.definition.kind;
    const input = options.input ?? 'left';
    if (input === 'right' && !this.definition.twoInputs) throw new Error(`${kind} has one input: input 'right' is for two-input operators`);
    let key: Key | undefined;
    if (this.backend) {
      const field = typeof this.options.keyField === 'object' ? this.options.keyField[input] : this.options.keyField;
      if (options.key !== undefined) key = options.key;
      else if (field === undefined) throw new Error(`${kind} is keyed: give process a key, or the harness a keyField`);
      else {
        const value = getField(record, field);
        if (!isKey(value)) return void this.dead.push({ record, reason: `record lacks the key field '${field}'` });
        key = value;
      }
      const kg = keyGroupFor(key, this.backend.maxParallelism);
      if (!this.ownsGroup(kg))
        throw new Error(
          `key ${String(key)} is in key group ${kg}, which subtask ${this.subtask.index} of ${this.subtask.parallelism} does not own ` +
            `(it owns ${this.range.start}–${this.range.end}); the runtime would dead-letter it: give it to the harness that owns(key)`,
        );
      this.backend.setCurrentKey(key, kg);
    }
    this.time.timestamp = options.timestamp;
    try {
      this.op.process(record, key, this.out, input === 'right' ? 1 : 0);
    } finally {
      this.time.timestamp = undefined;
    }
  }

  /** The input watermark rises to `watermark`: event-time timers due by it fire, in time order. It never goes back. */
  processWatermark(watermark: number): void {
    if (Number.isNaN(watermark)) throw new Error('a watermark is a number of ms, not NaN');
    if (watermark < this.time.watermark) throw new Error(`the watermark is ${this.time.watermark}: it only rises, not back to ${watermark}`);
    if (watermark === this.time.watermark) return;
    this.time.watermark = watermark;
    this.op.onWatermark?.(watermark, this.out);
  }

  /** The wall clock reaches `time`: processing-time timers due by it fire, in time order. It never goes back. */
  setProcessingTime(time: number): void {
    if (Number.isNaN(time)) throw new Error('a time is a number of ms, not NaN');
    if (time < this.now) throw new Error(`the clock is at ${this.now}: it only moves forward, not back to ${time}`);
    this.now = time;
    this.op.onProcessingTime?.(time, this.out);
  }

  /** The input ends: the watermark goes to Infinity, so every timer fires (processing-time ones too), as at a bounded job's end. */
  endInput(): void {
    this.processWatermark(Infinity);
  }

  /** What the operator emitted on its main output since the start (or `clearOutput`), with timestamps. */
  output(): Emitted[] {
    return [...this.emitted];
  }

  /** The records of `output()` alone. */
  records(): Rec[] {
    return this.emitted.map((e) => e.record);
  }

  /** What the operator emitted to a side output it declares in `outputs`. */
  sideOutput(name: string): Emitted[] {
    return [...this.sideList(name)];
  }

  /** What went to the dead-letter output, with the reasons. */
  deadLetters(): Rejected[] {
    return [...this.dead];
  }

  /** What went to the late output, with the reasons. */
  late(): Rejected[] {
    return [...this.tooLate];
  }

  /** What the operator logged. */
  logs(): LogLine[] {
    return [...this.lines];
  }

  /** Forgets every output, dead letter, late record and log line so far (state stays). */
  clearOutput(): void {
    this.emitted.length = this.dead.length = this.tooLate.length = this.lines.length = 0;
    this.sides.clear();
  }

  /** A key's declared state, copied out (empty when this subtask holds none for it). */
  state(key: Key): StateValues<S> {
    const backend = this.keyedBackend('state');
    backend.setCurrentKey(key);
    const out: Record<string, unknown> = {};
    for (const [name, d] of Object.entries(this.definition.state ?? {})) {
      if (d.kind === 'value') out[name] = backend.valueState(name).value();
      else if (d.kind === 'map') out[name] = new Map(backend.mapState(name).entries());
      else if (d.kind === 'list') out[name] = [...backend.listState(name).get()];
      else out[name] = backend.reducingState(name, d.reduce as (a: unknown, b: unknown) => unknown).get();
    }
    return structuredClone(out) as StateValues<S>;
  }

  /** A key's pending timers, in time order, per clock. */
  timers(key: Key): Record<TimeDomain, number[]> {
    const backend = this.keyedBackend('timers');
    backend.setCurrentKey(key);
    const of = (domain: TimeDomain) =>
      this.definition.onTimer ? [...backend.mapState<number, 1>(TIMER_STATE[domain]).entries()].map(([ts]) => ts) : [];
    return { event: of('event').sort((a, b) => a - b), processing: of('processing').sort((a, b) => a - b) };
  }

  /** Entries held over all state, timers included (a key with two states counts twice): 0 when nothing is kept. */
  keyCount(): number {
    return this.backend?.keyCount() ?? 0;
  }

  /** This subtask's state, timers, watermark and clock, as a checkpoint takes them. */
  snapshot(): HarnessSnapshot {
    const backend = this.backend;
    return {
      kind: this.definition.kind,
      maxParallelism: backend?.maxParallelism ?? this.options.maxParallelism ?? MAX_P,
      subtask: this.subtask,
      keyGroups: backend ? backend.snapshot(keyGroupsOf(this.range)) : new Map(),
      watermark: this.time.watermark,
      processingTime: this.now,
    };
  }

  private ownsGroup(kg: number): boolean {
    return kg >= this.range.start && kg <= this.range.end;
  }

  private sideList(name: string): Emitted[] {
    const outputs = this.definition.outputs ?? [];
    if (!outputs.includes(name))
      throw new Error(`'${name}' is not one of ${this.definition.kind}'s outputs (${outputs.join(', ') || 'it declares none'})`);
    let list = this.sides.get(name);
    if (!list) this.sides.set(name, (list = []));
    return list;
  }

  private keyedBackend(what: string): KeyedStateBackend {
    if (!this.backend) throw new Error(`${this.definition.kind} has no keyed input, so no ${what} per key`);
    return this.backend;
  }

  /** Loads the key groups this subtask owns from the snapshots, and starts event time at their lowest watermark. */
  private load(snapshots: readonly HarnessSnapshot[]): void {
    const seen = new Set<number>();
    for (const s of snapshots)
      for (const [kg, bytes] of s.keyGroups) {
        if (seen.has(kg)) throw new Error(`key group ${kg} is in two snapshots: they are not of one checkpoint`);
        seen.add(kg);
        if (this.ownsGroup(kg)) this.backend!.restore(kg, bytes);
      }
    this.time.watermark = Math.min(...snapshots.map((s) => s.watermark));
  }
}

/** Refuses snapshots of another operator, or of another number of key groups. */
function checkSnapshots(def: { kind: string }, snapshots: readonly HarnessSnapshot[]): void {
  if (snapshots.length === 0) throw new Error('no snapshots given');
  for (const s of snapshots) {
    if (s.kind !== def.kind) throw new Error(`a snapshot of ${s.kind} cannot be restored into ${def.kind}`);
    if (s.maxParallelism !== snapshots[0]!.maxParallelism)
      throw new Error(
        `the snapshots have ${s.maxParallelism} and ${snapshots[0]!.maxParallelism} key groups: maxParallelism is fixed for an operator's life`,
      );
  }
}
