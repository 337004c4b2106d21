import type { Rec } from '../codec.ts';
import type { Key } from '../hashing.ts';
import type { KeyedStateBackend } from '../stateBackend.ts';
import { KeyedTimers } from '../timers.ts';
import { NO_WATERMARK } from '../watermarks.ts';
import { notingDownstream } from '../operators/output.ts';
import type { OperatorContext, Output, RecordTime, StreamOperator } from '../operators/types.ts';
import {
  TIMER_STATE,
  type OperatorDefinition,
  type OperatorLogger,
  type ProcessContext,
  type StateHandles,
  type StateSpec,
  type TimeDomain,
  type Timers,
} from './define.ts';

const silent: OperatorLogger = { info() {}, warn() {}, error() {} };

const message = (err: unknown) => (err instanceof Error ? err.message : String(err));

function handleOf(backend: KeyedStateBackend, name: string, d: StateSpec[string]): unknown {
  switch (d.kind) {
    case 'value':
      return backend.valueState(name);
    case 'map':
      return backend.mapState(name);
    case 'list':
      return backend.listState(name);
    case 'reducing':
      return backend.reducingState(name, d.reduce as (a: unknown, b: unknown) => unknown);
  }
}

/**
 * The context an operator's calls get: one per subtask, reused by every call. What changes per call is a field the
 * binding sets (the key, the input, the clock of a timer, where emits go); event time is read through, on the
 * prototype, so the instance keeps one fast shape.
 */
class Context implements ProcessContext<unknown, StateSpec> {
  currentKey: Key | undefined = undefined;
  input: 'left' | 'right' = 'left';
  timeDomain: TimeDomain | undefined = undefined;
  /** Where the call in hand emits to. */
  out: Output = { emit: () => {} };
  readonly deadLetter: OperatorContext['deadLetter'];
  readonly late: OperatorContext['deadLetter'];

  constructor(
    readonly settings: unknown,
    readonly subtask: { readonly index: number; readonly parallelism: number },
    readonly log: OperatorLogger,
    readonly state: StateHandles<StateSpec>,
    private readonly time: RecordTime,
    private readonly outputs: ReadonlySet<string>,
    private readonly engine: OperatorContext,
    readonly timers: Timers,
  ) {
    this.deadLetter = engine.deadLetter;
    this.late = engine.late ?? engine.deadLetter;
  }

  get timestamp(): number | undefined {
    return this.time.timestamp;
  }

  get watermark(): number {
    return this.time.watermark;
  }

  emit(record: Rec, options?: { timestamp?: number }): void {
    if (options?.timestamp === undefined) this.out.emit(record);
    else {
      const out = this.out;
      this.at(options.timestamp, () => out.emit(record));
    }
  }

  emitTo(output: string, record: Rec, options?: { timestamp?: number }): void {
    if (!this.outputs.has(output))
      throw new Error(`'${output}' is not one of the operator's outputs (${[...this.outputs].join(', ') || 'none declared'})`);
    const out = this.out;
    this.at(options?.timestamp, () =>
      out.emitTo ? out.emitTo(output, record) : this.engine.deadLetter(record, `side output '${output}' has nowhere to go`),
    );
  }

  /** Runs `f` with `timestamp` as the event time of what it emits. */
  private at(timestamp: number | undefined, f: () => void): void {
    const prev = this.time.timestamp;
    if (timestamp !== undefined) this.time.timestamp = timestamp;
    try {
      f();
    } finally {
      this.time.timestamp = prev;
    }
  }
}

/**
 * Runs an SDK operator as the engine's `StreamOperator`: its settings parsed, its state declared on the keyed
 * backend under the names it gave, its timers as keyed timers (in key groups too), and one context object that
 * every call reuses. A setting that does not parse, or a throw in `open`, throws here: the subtask fails with it.
 */
export function bindOperator(def: OperatorDefinition, settings: unknown, ctx: OperatorContext): StreamOperator {
  const parsed = def.settings.safeParse(settings ?? {});
  if (!parsed.success)
    throw new Error(
      `${def.kind}: settings do not parse: ${parsed.error.issues.map((i) => `${i.path.join('.') || '(settings)'}: ${i.message}`).join('; ')}`,
    );
  const backend = ctx.backend;
  if (def.inputs === 'keyed' && !backend) throw new Error(`${def.kind}: a keyed operator needs a keyed state backend`);
  const time = ctx.time ?? { timestamp: undefined, watermark: NO_WATERMARK };
  const clock = ctx.clock ?? Date.now;
  const log = ctx.log ?? silent;
  const subtask = ctx.subtask ?? { index: 0, parallelism: 1 };
  const outputs: ReadonlySet<string> = new Set(def.outputs ?? []);

  const state: Record<string, unknown> = {};
  for (const [name, d] of Object.entries(def.state ?? {})) state[name] = handleOf(backend!, name, d);
  const timers: Record<TimeDomain, KeyedTimers> | undefined =
    def.onTimer && backend
      ? { event: new KeyedTimers(backend, TIMER_STATE.event, ctx.owns), processing: new KeyedTimers(backend, TIMER_STATE.processing, ctx.owns) }
      : undefined;
  const timersOf = (domain: TimeDomain) => {
    if (!timers) throw new Error(`${def.kind} registers timers but has no onTimer`);
    return timers[domain];
  };

  // On the record path `guarded` tells downstream's failures from the operator's; on the timer path the output is
  // wrapped (once per output) to do the same.
  let thrownDownstream: unknown;
  const tracking = new WeakMap<Output, Output>();
  const tracked = (o: Output): Output => {
    let t = tracking.get(o);
    if (!t) tracking.set(o, (t = notingDownstream(o, (err) => (thrownDownstream = err))));
    return t;
  };

  const pc = new Context(parsed.data, subtask, log, state, time, outputs, ctx, {
    registerEventTime: (ts) => timersOf('event').register(ts),
    registerProcessingTime: (ts) => timersOf('processing').register(ts),
    deleteEventTime: (ts) => timersOf('event').delete(ts),
    deleteProcessingTime: (ts) => timersOf('processing').delete(ts),
    currentProcessingTime: clock,
  });

  if (def.open)
    try {
      def.open({ settings: parsed.data, subtask, log });
    } catch (err) {
      throw new Error(`${def.kind} failed to open: ${message(err)}`, { cause: err });
    }

  const onTimer = def.onTimer;
  const fire = (d: TimeDomain) => (ts: number, key: Key) => {
    pc.timeDomain = d;
    pc.currentKey = key;
    const prev = time.timestamp;
    time.timestamp = d === 'event' ? ts : undefined;
    try {
      onTimer!(ts, pc);
    } catch (err) {
      if (err === thrownDownstream) throw err;
      ctx.deadLetter({ key, timer: ts, domain: d }, `${def.kind} threw in onTimer: ${message(err)}`);
    } finally {
      time.timestamp = prev;
      pc.timeDomain = undefined;
    }
  };
  const fireEvent = fire('event');
  const fireProcessing = fire('processing');

  const op: StreamOperator = {
    process(record, key, o, i) {
      pc.out = o;
      pc.currentKey = key;
      if (i !== undefined) pc.input = i === 1 ? 'right' : 'left';
      def.process(record, pc);
    },
  };
  if (timers) {
    op.onWatermark = (watermark, o) => {
      pc.out = tracked(o);
      time.watermark = watermark;
      timers.event.advance(watermark, fireEvent);
      // The end of the input: nothing more comes, so every timer fires (processing-time windows close too).
      if (watermark === Infinity) timers.processing.advance(Infinity, fireProcessing);
    };
    op.onProcessingTime = (now, o) => {
      pc.out = tracked(o);
      timers.processing.advance(now, fireProcessing);
    };
  }
  return op;
}
