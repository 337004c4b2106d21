import { z } from 'zod';
import type { Rec } from '../codec.ts';
import type { Key } from '../hashing.ts';
import type { ListState, MapState, ReducingState, ValueState } from '../stateBackend.ts';

/** The kinds of keyed state an operator may declare; each lives in key groups (checkpointed, moved by a rescale). */
export type StateKind = 'value' | 'map' | 'list' | 'reducing';

/** A declared state: its kind, and for a reducing state its function. `H` is the handle the operator gets. */
export interface StateDescriptor<H = unknown> {
  readonly kind: StateKind;
  readonly reduce?: (a: never, b: never) => unknown;
  /** Only carries the handle's type. */
  readonly handle?: H;
}

/** One value per key. */
export const valueState = <T>(): StateDescriptor<ValueState<T>> => ({ kind: 'value' });
/** A map per key (e.g. seen ids → when). */
export const mapState = <K extends Key, V>(): StateDescriptor<MapState<K, V>> => ({ kind: 'map' });
/** A list per key. */
export const listState = <T>(): StateDescriptor<ListState<T>> => ({ kind: 'list' });
/** One value per key that each `add` folds in with `reduce`. */
export const reducingState = <T>(reduce: (a: T, b: T) => T): StateDescriptor<ReducingState<T>> => ({
  kind: 'reducing',
  reduce: reduce as (a: never, b: never) => unknown,
});

export type StateSpec = Record<string, StateDescriptor>;
/** The handles of a declared state, by name. */
export type StateHandles<S extends StateSpec> = { readonly [N in keyof S]: S[N] extends StateDescriptor<infer H> ? H : never };

/** Which clock a timer runs on. */
export type TimeDomain = 'event' | 'processing';

/** Timers of the current key: kept in its key group like its state, so checkpoints and rescales move them too. */
export interface Timers {
  /** Calls `onTimer` once the watermark reaches `ts` (one timer per key and time, however often registered). */
  registerEventTime(ts: number): void;
  /** Calls `onTimer` once the wall clock reaches `ts`. */
  registerProcessingTime(ts: number): void;
  deleteEventTime(ts: number): void;
  deleteProcessingTime(ts: number): void;
  /** The wall clock as the operator sees it (a test harness sets its own). */
  currentProcessingTime(): number;
}

/** Where an operator logs: lines carry the job, vertex and subtask. */
export interface OperatorLogger {
  info(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
  error(message: string, fields?: Record<string, unknown>): void;
}

/** What `open` sees: the settings, where it runs, a logger. */
export interface OpenContext<Settings> {
  readonly settings: Settings;
  /** This subtask's index and the operator's parallelism (both change with a live rescale). */
  readonly subtask: { readonly index: number; readonly parallelism: number };
  readonly log: OperatorLogger;
}

/** What `process` and `onTimer` see. */
export interface ProcessContext<Settings, S extends StateSpec> extends OpenContext<Settings> {
  /** The declared state, scoped to the current key. */
  readonly state: StateHandles<S>;
  readonly timers: Timers;
  /** The key of the record (or timer) in hand; undefined for an operator with `inputs: 'any'`. */
  readonly currentKey: Key | undefined;
  /** The event time of the record in hand (of the timer, in `onTimer` on event time); undefined: it has none. */
  readonly timestamp: number | undefined;
  /** The operator's input watermark: event time up to which no more records are expected. */
  readonly watermark: number;
  /** Which input a two-input operator's record came by. */
  readonly input: 'left' | 'right';
  /** The clock of the timer in hand (`onTimer` only). */
  readonly timeDomain: TimeDomain | undefined;
  /** Emits a record downstream, at the record's event time unless `timestamp` says another. */
  emit(record: Rec, options?: { timestamp?: number }): void;
  /** Emits to a side output named in `outputs`: the edges drawn from that output get it. */
  emitTo(output: string, record: Rec, options?: { timestamp?: number }): void;
  /** Sends a record the operator cannot process to its dead-letter output, with the reason (counted and sampled). */
  deadLetter(record: unknown, reason: string): void;
  /** Sends a record that came too late for the operator's event time to its late output (counted and sampled). */
  late(record: unknown, reason: string): void;
}

/** An operator written on the SDK: what the builder shows, its settings, its state, and what it does per record. */
export interface OperatorDefinition<Schema extends z.ZodType = z.ZodType, S extends StateSpec = StateSpec> {
  /** The operator's type in pipelines: a name unique in the catalog (letters, digits, _ and -). */
  kind: string;
  title: string;
  description: string;
  /** Validates and types the settings; the builder's form is generated from it. */
  settings: Schema;
  /** `keyed`: after a keyBy, with keyed state and timers; `any`: any input, no state. */
  inputs: 'keyed' | 'any';
  /** Two keyed inputs, `left` and `right` (a join). */
  twoInputs?: boolean;
  /** Side outputs `emitTo` may name. */
  outputs?: readonly string[];
  state?: S;
  /** The fields of what it emits, given its settings and its input's fields (for the builder's field checks). */
  outputFields?(settings: unknown, input: readonly string[] | undefined): string[] | undefined;
  /** Once per subtask before the first record; a throw here fails the subtask with the message. */
  open?(ctx: OpenContext<z.output<Schema>>): void;
  /** One record; a throw here dead-letters the record with the message. */
  process(record: Rec, ctx: ProcessContext<z.output<Schema>, S>): void;
  /** A timer of the current key is due; a throw here dead-letters `{key, timer, domain}` with the message. */
  onTimer?(ts: number, ctx: ProcessContext<z.output<Schema>, S>): void;
}

/** The state names the engine keeps timers under. */
export const TIMER_STATE: Record<TimeDomain, string> = { event: 'timers', processing: 'processingTimers' };

const KIND = /^[A-Za-z][\w-]{0,63}$/;
const MARK = Symbol.for('keyflow.operator');

/** Whether a value is an operator made by `defineOperator` (of any copy of the SDK). */
export function isOperatorDefinition(value: unknown): value is OperatorDefinition {
  return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[MARK] === 1;
}

/**
 * Defines an operator (Flink's KeyedProcessFunction, written as an object): checks the definition once, so a
 * mistake shows when the module loads rather than on the first record.
 */
export function defineOperator<Schema extends z.ZodType, S extends StateSpec = Record<never, never>>(
  def: OperatorDefinition<Schema, S>,
): OperatorDefinition<Schema, S> {
  const problem = definitionProblem(def as unknown as OperatorDefinition);
  if (problem) throw new Error(`operator '${String(def.kind)}': ${problem}`);
  return Object.freeze({ ...def, [MARK]: 1 }) as OperatorDefinition<Schema, S>;
}

function definitionProblem(def: OperatorDefinition): string | undefined {
  if (typeof def.kind !== 'string' || !KIND.test(def.kind)) return 'kind must be a letter, then letters, digits, _ or -, at most 64';
  if (typeof def.title !== 'string' || !def.title.trim()) return 'a title is needed';
  if (typeof def.description !== 'string') return 'a description is needed';
  if (!(def.settings instanceof z.ZodType)) return 'settings must be a zod schema';
  if (def.inputs !== 'keyed' && def.inputs !== 'any') return "inputs must be 'keyed' or 'any'";
  if (typeof def.process !== 'function') return 'process(record, ctx) is needed';
  const names = Object.keys(def.state ?? {});
  if (def.inputs === 'any' && (names.length || def.onTimer || def.twoInputs))
    return "state, timers and two inputs need keyed input (inputs: 'keyed')";
  for (const n of names) {
    if (Object.values(TIMER_STATE).includes(n)) return `state '${n}' is a name the engine keeps timers under`;
    const d = def.state![n]!;
    if (!['value', 'map', 'list', 'reducing'].includes(d.kind)) return `state '${n}' is no state descriptor (valueState(), mapState(), …)`;
  }
  const outputs = def.outputs ?? [];
  if (outputs.some((o) => !KIND.test(o))) return 'output names are letters, digits, _ and -';
  if (new Set(outputs).size !== outputs.length) return 'an output is named twice';
  return undefined;
}
