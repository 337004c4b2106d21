import type { Rec } from '../codec.ts';
import type { IntervalJoinSettings, WindowJoinSettings } from '../operatorCatalog.ts';
import { defineOperator, mapState, type ProcessContext, type StateSpec } from '../sdk/define.ts';
import { isWindowLate, maxTimestamp, slidingWindows, tumblingWindow, type Window } from '../windows.ts';
import { builtin } from './builtin.ts';

const noTime = (ctx: ProcessContext<unknown, StateSpec>, name: string, rec: Rec) =>
  ctx.deadLetter(rec, `${name}: the record has no event time (give its source a timestamp field, or use ingestion time)`);

/** A window join's state per key and window start: its end and what each side brought. */
type JoinWindow = [end: number, left: Rec[], right: Rec[]];

const assignOf = (s: WindowJoinSettings, ts: number): Window[] =>
  s.assigner === 'sliding' ? slidingWindows(ts, s.size, s.slide!, s.offset) : [tumblingWindow(ts, s.size, s.offset)];

/**
 * A window join (DESIGN §11): left and right records of one key that fall in the same tumbling or sliding window are
 * paired when the window fires (the watermark, the minimum over both inputs, passes its end): one
 * `{key, windowStart, windowEnd, left, right}` per pair. Windows are map state and their fire times keyed timers, in
 * key groups like any keyed state. A record whose windows all fired already goes to the late output.
 */
export const windowJoinOperator = defineOperator({
  ...builtin('windowJoin'),
  inputs: 'keyed',
  twoInputs: true,
  state: { joinWindows: mapState<number, JoinWindow>() },
  process(rec, ctx) {
    const ts = ctx.timestamp;
    if (ts === undefined) return noTime(ctx, 'window join', rec);
    let accepted = false;
    for (const w of assignOf(ctx.settings, ts)) {
      if (isWindowLate(w, 0, ctx.watermark)) continue;
      accepted = true;
      let st = ctx.state.joinWindows.get(w.start);
      if (!st) {
        ctx.state.joinWindows.put(w.start, (st = [w.end, [], []]));
        // Registered with the window's state, which it fires and clears: a window that has state has its timer.
        ctx.timers.registerEventTime(maxTimestamp(w));
      }
      st[ctx.input === 'left' ? 1 : 2].push(rec);
    }
    if (!accepted) ctx.late(rec, `late: its windows fired already (event time ${ts}, watermark ${ctx.watermark})`);
  },
  onTimer(t, ctx) {
    const windows = ctx.state.joinWindows;
    const key = ctx.currentKey;
    const due: [number, JoinWindow][] = [];
    for (const e of windows.entries()) if (e[1][0] - 1 <= t) due.push(e);
    for (const [start, [end, left, right]] of due) {
      for (const l of left) for (const r of right) ctx.emit({ key, windowStart: start, windowEnd: end, left: l, right: r }, { timestamp: end - 1 });
      windows.remove(start);
    }
    if (windows.entries().next().done) windows.clear();
  },
});

/** When a record of a side can have no partner any more. */
const expiry = (s: IntervalJoinSettings, side: 'left' | 'right', ts: number) => (side === 'left' ? ts + s.upper : ts - s.lower);

/**
 * An interval join (DESIGN §11): a left record `a` and a right record `b` of one key pair when
 * `b.ts ∈ [a.ts + lower, a.ts + upper]`, emitted as soon as the later of the two arrives: `{key, left, right}` at the
 * later of their times. Each side's records wait in map state (event time → records) until the watermark says no
 * partner can come any more (a left one at `a.ts + upper`, a right one at `b.ts − lower`): keyed timers expire them.
 * A record at or behind the watermark when it arrives is late: its partners may be gone.
 */
export const intervalJoinOperator = defineOperator({
  ...builtin('intervalJoin'),
  inputs: 'keyed',
  twoInputs: true,
  state: { left: mapState<number, Rec[]>(), right: mapState<number, Rec[]>() },
  process(rec, ctx) {
    const s = ctx.settings;
    const ts = ctx.timestamp;
    if (ts === undefined) return noTime(ctx, 'interval join', rec);
    if (ts <= ctx.watermark) return ctx.late(rec, `late: event time ${ts} is not after the watermark ${ctx.watermark}`);
    const key = ctx.currentKey;
    const side = ctx.input;
    const own = ctx.state[side];
    const other = ctx.state[side === 'left' ? 'right' : 'left'];
    // The other side's times that pair with ts: right ∈ [ts + lower, ts + upper], left ∈ [ts − upper, ts − lower].
    const [lo, hi] = side === 'left' ? [ts + s.lower, ts + s.upper] : [ts - s.upper, ts - s.lower];
    for (const [t, recs] of other.entries()) {
      if (t < lo || t > hi) continue;
      for (const o of recs) ctx.emit(side === 'left' ? { key, left: rec, right: o } : { key, left: o, right: rec }, { timestamp: Math.max(t, ts) });
    }
    const held = own.get(ts);
    if (held) held.push(rec);
    else {
      // The records held at ts expire together: their timer came with the first of them.
      own.put(ts, [rec]);
      ctx.timers.registerEventTime(expiry(s, side, ts));
    }
  },
  onTimer(t, ctx) {
    for (const side of ['left', 'right'] as const) {
      const records = ctx.state[side];
      const gone: number[] = [];
      for (const [ts] of records.entries()) if (expiry(ctx.settings, side, ts) <= t) gone.push(ts);
      for (const ts of gone) records.remove(ts);
      if (records.entries().next().done) records.clear();
    }
  },
});

/** A regular join's records of one side, by event time (0 for records without one when nothing expires). */
const sideState = () => mapState<number, Rec[]>();

/**
 * A regular join (Flink's inner join of two streams, no window): every left record of a key pairs with every right
 * record of that key, whichever comes first; each pair is emitted once, when the later of the two arrives, as
 * `{key, left, right}` at the later of their times. Both sides stay in keyed state, so checkpoints, recovery and
 * live rescale carry them. With `retain`, a record leaves the state once the watermark is `retain` past its event time
 * (a keyed timer): later partners no longer find it. Without it the state holds every record for ever, as Flink's
 * does without a state TTL: fit for sides whose keys are bounded, such as a dimension stream.
 */
export const joinOperator = defineOperator({
  ...builtin('join'),
  inputs: 'keyed',
  twoInputs: true,
  state: { left: sideState(), right: sideState() },
  process(rec, ctx) {
    const retain = ctx.settings.retain;
    const ts = ctx.timestamp;
    if (retain !== undefined && ts === undefined) return noTime(ctx, 'join', rec);
    const key = ctx.currentKey;
    const side = ctx.input;
    const other = ctx.state[side === 'left' ? 'right' : 'left'];
    for (const [t, recs] of other.entries()) {
      const at = ts === undefined ? undefined : { timestamp: Math.max(t, ts) };
      for (const o of recs) ctx.emit(side === 'left' ? { key, left: rec, right: o } : { key, left: o, right: rec }, at);
    }
    const own = ctx.state[side];
    const t = ts ?? 0;
    // A record already past its retention pairs with what is there, but is not kept.
    if (retain !== undefined && t + retain <= ctx.watermark) return;
    const held = own.get(t);
    if (held) held.push(rec);
    else {
      // The records held at t leave together: their timer came with the first of them.
      own.put(t, [rec]);
      if (retain !== undefined) ctx.timers.registerEventTime(t + retain);
    }
  },
  onTimer(t, ctx) {
    const retain = ctx.settings.retain ?? Infinity;
    for (const side of ['left', 'right'] as const) {
      const records = ctx.state[side];
      const gone: number[] = [];
      for (const [ts] of records.entries()) if (ts + retain <= t) gone.push(ts);
      for (const ts of gone) records.remove(ts);
      if (records.entries().next().done) records.clear();
    }
  },
});
