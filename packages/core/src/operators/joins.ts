import type { Rec } from '../codec.ts';
import type { IntervalJoinSettings, WindowJoinSettings } from '../operatorCatalog.ts';
import { KeyedTimers } from '../timers.ts';
import { NO_WATERMARK } from '../watermarks.ts';
import { isWindowLate, maxTimestamp, slidingWindows, tumblingWindow, type Window } from '../windows.ts';
import type { OperatorContext, Output, RecordTime, StreamOperator } from './types.ts';

const LEFT = 0;

/** What joins share: the keyed backend, event time, and where late records go. */
function joinContext(ctx: OperatorContext, name: string) {
  const backend = ctx.backend;
  if (!backend) throw new Error('a keyed operator needs a keyed state backend');
  const time: RecordTime = ctx.time ?? { timestamp: undefined, watermark: NO_WATERMARK };
  const late = ctx.late ?? ctx.deadLetter;
  const noTime = (rec: Rec) =>
    ctx.deadLetter(rec, `${name}: the record has no event time (give its source a timestamp field, or use ingestion time)`);
  return { backend, time, late, noTime };
}

/** Emits with `ts` as the output's event time, restoring the record's afterwards. */
function emitAt(time: RecordTime, ts: number, out: Output, rec: Rec): void {
  const prev = time.timestamp;
  time.timestamp = ts;
  out.emit(rec);
  time.timestamp = prev;
}

/** A window join's state per key and window start: its end and what each side brought. */
type JoinWindow = [end: number, left: Rec[], right: Rec[]];

/**
 * A window join (DESIGN §11): left and right records of one key that fall in the same tumbling or sliding window are
 * paired when the window fires (the watermark, the minimum over both inputs, passes its end): one
 * `{key, windowStart, windowEnd, left, right}` per pair. Windows are map state and their fire times keyed timers, in
 * key groups like any keyed state. A record whose windows all fired already goes to the late output.
 */
export function windowJoinOperator(s: WindowJoinSettings, ctx: OperatorContext): StreamOperator {
  const { backend, time, late, noTime } = joinContext(ctx, 'window join');
  const windows = backend.mapState<number, JoinWindow>('joinWindows');
  const timers = new KeyedTimers(backend, 'timers', ctx.owns);
  const assign = (ts: number): Window[] =>
    s.assigner === 'sliding' ? slidingWindows(ts, s.size, s.slide!, s.offset) : [tumblingWindow(ts, s.size, s.offset)];
  const fire = (wm: number, out: Output) => {
    const key = backend.currentKey;
    const due: [number, JoinWindow][] = [];
    for (const e of windows.entries()) if (e[1][0] - 1 <= wm) due.push(e);
    for (const [start, [end, left, right]] of due) {
      for (const l of left) for (const r of right) emitAt(time, end - 1, out, { key, windowStart: start, windowEnd: end, left: l, right: r });
      windows.remove(start);
    }
    if (windows.entries().next().done) windows.clear();
  };
  return {
    process(rec, _key, _out, input = LEFT) {
      const ts = time.timestamp;
      if (ts === undefined) return noTime(rec);
      let accepted = false;
      for (const w of assign(ts)) {
        if (isWindowLate(w, 0, time.watermark)) continue;
        accepted = true;
        let st = windows.get(w.start);
        if (!st) windows.put(w.start, (st = [w.end, [], []]));
        st[input === LEFT ? 1 : 2].push(rec);
        timers.register(maxTimestamp(w));
      }
      if (!accepted) late(rec, `late: its windows fired already (event time ${ts}, watermark ${time.watermark})`);
    },
    onWatermark(watermark, out) {
      time.watermark = watermark;
      timers.advance(watermark, () => fire(watermark, out));
    },
  };
}

/**
 * An interval join (DESIGN §11): a left record `a` and a right record `b` of one key pair when
 * `b.ts ∈ [a.ts + lower, a.ts + upper]`, emitted as soon as the later of the two arrives: `{key, left, right}` at the
 * later of their times. Each side's records wait in map state (event time → records) until the watermark says no
 * partner can come any more (a left one at `a.ts + upper`, a right one at `b.ts − lower`): keyed timers expire them.
 * A record at or behind the watermark when it arrives is late: its partners may be gone.
 */
export function intervalJoinOperator(s: IntervalJoinSettings, ctx: OperatorContext): StreamOperator {
  const { backend, time, late, noTime } = joinContext(ctx, 'interval join');
  const sides = [backend.mapState<number, Rec[]>('left'), backend.mapState<number, Rec[]>('right')] as const;
  const timers = new KeyedTimers(backend, 'timers', ctx.owns);
  /** When a record of a side can have no partner any more. */
  const expiry = (input: number, ts: number) => (input === LEFT ? ts + s.upper : ts - s.lower);
  const expire = (wm: number) => {
    sides.forEach((side, input) => {
      const gone: number[] = [];
      for (const [ts] of side.entries()) if (expiry(input, ts) <= wm) gone.push(ts);
      for (const ts of gone) side.remove(ts);
      if (side.entries().next().done) side.clear();
    });
  };
  return {
    process(rec, _key, out, input = LEFT) {
      const ts = time.timestamp;
      if (ts === undefined) return noTime(rec);
      if (ts <= time.watermark) return late(rec, `late: event time ${ts} is not after the watermark ${time.watermark}`);
      const key = backend.currentKey;
      const own = sides[input === LEFT ? 0 : 1];
      const other = sides[input === LEFT ? 1 : 0];
      // The other side's times that pair with ts: right ∈ [ts + lower, ts + upper], left ∈ [ts − upper, ts − lower].
      const [lo, hi] = input === LEFT ? [ts + s.lower, ts + s.upper] : [ts - s.upper, ts - s.lower];
      for (const [t, recs] of other.entries()) {
        if (t < lo || t > hi) continue;
        for (const o of recs) emitAt(time, Math.max(t, ts), out, input === LEFT ? { key, left: rec, right: o } : { key, left: o, right: rec });
      }
      const held = own.get(ts);
      if (held) held.push(rec);
      else own.put(ts, [rec]);
      timers.register(expiry(input, ts));
    },
    onWatermark(watermark, _out) {
      time.watermark = watermark;
      timers.advance(watermark, () => expire(watermark));
    },
  };
}
