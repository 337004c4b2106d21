import type { Rec } from '../codec.ts';
import type { Key } from '../hashing.ts';
import type { KeyedStateBackend } from '../stateBackend.ts';
import { KeyedTimers } from '../timers.ts';
import { NO_WATERMARK } from '../watermarks.ts';
import type { OperatorContext, Output, StreamOperator } from '../operators/types.ts';
import { TIMER_STATE, type OperatorDefinition, type OperatorLogger, type ProcessContext, type StateSpec, type TimeDomain } from './define.ts';

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
  const outputs = new Set(def.outputs ?? []);

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

  // The output of the call in hand; what it throws is downstream's failure, not this operator's.
  let out: Output | undefined;
  let thrownDownstream: unknown;
  let input: 'left' | 'right' = 'left';
  let domain: TimeDomain | undefined;
  const send = (emit: () => void, timestamp: number | undefined) => {
    const prev = time.timestamp;
    if (timestamp !== undefined) time.timestamp = timestamp;
    try {
      emit();
    } catch (err) {
      thrownDownstream = err;
      throw err;
    } finally {
      time.timestamp = prev;
    }
  };

  const pc: ProcessContext<unknown, StateSpec> = {
    settings: parsed.data,
    subtask,
    log,
    state,
    timers: {
      registerEventTime: (ts) => timersOf('event').register(ts),
      registerProcessingTime: (ts) => timersOf('processing').register(ts),
      deleteEventTime: (ts) => timersOf('event').delete(ts),
      deleteProcessingTime: (ts) => timersOf('processing').delete(ts),
      currentProcessingTime: clock,
    },
    get currentKey(): Key | undefined {
      return backend?.currentKey;
    },
    get timestamp() {
      return time.timestamp;
    },
    get watermark() {
      return time.watermark;
    },
    get input() {
      return input;
    },
    get timeDomain() {
      return domain;
    },
    emit(record: Rec, options?: { timestamp?: number }) {
      const o = out!;
      if (options?.timestamp === undefined)
        try {
          o.emit(record);
        } catch (err) {
          thrownDownstream = err;
          throw err;
        }
      else send(() => o.emit(record), options.timestamp);
    },
    emitTo(output: string, record: Rec, options?: { timestamp?: number }) {
      if (!outputs.has(output)) throw new Error(`'${output}' is not one of the operator's outputs (${[...outputs].join(', ') || 'none declared'})`);
      const o = out!;
      send(() => (o.emitTo ? o.emitTo(output, record) : ctx.deadLetter(record, `side output '${output}' has nowhere to go`)), options?.timestamp);
    },
    deadLetter: ctx.deadLetter,
    late: ctx.late ?? ctx.deadLetter,
  };

  if (def.open)
    try {
      def.open({ settings: parsed.data, subtask, log });
    } catch (err) {
      throw new Error(`${def.kind} failed to open: ${message(err)}`, { cause: err });
    }

  const onTimer = def.onTimer;
  const fire = (d: TimeDomain) => (ts: number, key: Key) => {
    domain = d;
    const prev = time.timestamp;
    time.timestamp = d === 'event' ? ts : undefined;
    try {
      onTimer!(ts, pc);
    } catch (err) {
      if (err === thrownDownstream) throw err;
      ctx.deadLetter({ key, timer: ts, domain: d }, `${def.kind} threw in onTimer: ${message(err)}`);
    } finally {
      time.timestamp = prev;
      domain = undefined;
    }
  };
  const fireEvent = fire('event');
  const fireProcessing = fire('processing');

  const op: StreamOperator = {
    process(record, _key, o, i) {
      out = o;
      input = i === 1 ? 'right' : 'left';
      def.process(record, pc);
    },
  };
  if (timers) {
    op.onWatermark = (watermark, o) => {
      out = o;
      time.watermark = watermark;
      timers.event.advance(watermark, fireEvent);
      // The end of the input: nothing more comes, so every timer fires (processing-time windows close too).
      if (watermark === Infinity) timers.processing.advance(Infinity, fireProcessing);
    };
    op.onProcessingTime = (now, o) => {
      out = o;
      timers.processing.advance(now, fireProcessing);
    };
  }
  return op;
}
