import type { Rec } from '../codec.ts';
import type { Key } from '../hashing.ts';
import type { WindowSettings } from '../operatorCatalog.ts';
import { KeyedTimers } from '../timers.ts';
import { NO_WATERMARK } from '../watermarks.ts';
import { Aggregator, isWindowLate, maxTimestamp, mergeSession, parseAggregates, slidingWindows, tumblingWindow, type Window } from '../windows.ts';
import type { OperatorContext, Output, StreamOperator } from './types.ts';

/** A window's state: its end, whether it fired (kept until its allowed lateness is over), and its accumulator. */
type WindowState = [end: number, fired: 0 | 1, acc: number[]];

const iso = (t: number) => (Number.isFinite(t) ? new Date(t).toISOString() : String(t));

/**
 * A keyed window (DESIGN §11): tumbling, sliding or session windows over event time or processing time, with
 * aggregates. Window contents are a map state per key (window start → state) and fire times are keyed timers, so
 * both live in key groups: checkpointed, restored and moved by a live rescale like any keyed state. A window fires
 * when the watermark passes its end (processing time: the wall clock), emitting `{key, windowStart, windowEnd,
 * ...aggregates}` timestamped at its last millisecond. A record for a window that fired but is within the allowed
 * lateness updates and re-emits it; one later than that goes to the late output.
 */
export function windowOperator(s: WindowSettings, ctx: OperatorContext): StreamOperator {
  const backend = ctx.backend;
  if (!backend) throw new Error('a keyed operator needs a keyed state backend');
  const parsed = parseAggregates(s.aggregates);
  if (!parsed.ok) throw new Error(parsed.message);
  const agg = new Aggregator(parsed.aggregates);
  const eventTime = s.time === 'event';
  const time = ctx.time ?? { timestamp: undefined, watermark: NO_WATERMARK };
  const late = ctx.late ?? ctx.deadLetter;
  const lateness = eventTime ? s.allowedLateness : 0;
  const windows = backend.mapState<number, WindowState>('windows');
  const timers = new KeyedTimers(backend, eventTime ? 'timers' : 'processingTimers', ctx.owns);

  const assign = (ts: number): Window[] =>
    s.assigner === 'sliding' ? slidingWindows(ts, s.size, s.slide!, s.offset) : [tumblingWindow(ts, s.size, s.offset)];

  const emit = (key: Key | undefined, start: number, st: WindowState, out: Output) => {
    const prev = time.timestamp;
    time.timestamp = st[0] - 1;
    out.emit({ key, windowStart: start, windowEnd: st[0], ...agg.result(st[2]) });
    time.timestamp = prev;
  };

  /** When a window's timer is due: at its end, or (fired, with lateness) at its cleanup. */
  const timerOf = (end: number, fired: boolean | 0 | 1) => (fired ? end - 1 + lateness : end - 1);
  /** Registers what a window waits for: firing at its end, or (fired, with lateness) its cleanup. */
  const schedule = (w: Window, fired: boolean) => timers.register(timerOf(w.end, fired));

  /** Fires and cleans up the current key's windows due at `t`. */
  const fire = (t: number, out: Output) => {
    const key = backend.currentKey;
    const due: [number, WindowState][] = [];
    for (const e of windows.entries()) if (e[1][0] - 1 <= t) due.push(e);
    // In time order: a key's results go out as its windows end, whatever order they were made in.
    due.sort((a, b) => a[1][0] - b[1][0] || a[0] - b[0]);
    for (const [start, st] of due) {
      if (!st[1]) {
        emit(key, start, st, out);
        if (lateness > 0 && st[0] - 1 + lateness > t) {
          st[1] = 1;
          schedule({ start, end: st[0] }, true);
          continue;
        }
      } else if (st[0] - 1 + lateness > t) continue;
      windows.remove(start);
    }
    if (windows.entries().next().done) windows.clear();
  };

  /** Adds a record to one window of the current key; a window that fired already, or is due already, is emitted at once. */
  const addTo = (w: Window, values: number[], out: Output) => {
    let st = windows.get(w.start);
    if (!st) windows.put(w.start, (st = [w.end, 0, agg.create()]));
    agg.add(st[2], values);
    if (!st[1]) {
      const due = eventTime && maxTimestamp(w) <= time.watermark;
      if (!due) return schedule(w, false);
      // A late record (within the allowed lateness) made a window the watermark has passed: it fires now.
      st[1] = 1;
      schedule(w, true);
    }
    emit(backend.currentKey, w.start, st, out);
  };

  /** Merges a record's session into the current key's sessions it touches. */
  const addToSession = (ts: number, values: number[], out: Output): boolean => {
    const sessions: Window[] = [];
    for (const [start, st] of windows.entries()) sessions.push({ start, end: st[0] });
    const { merged, absorbed } = mergeSession(sessions, ts, s.gap!);
    if (eventTime && isWindowLate(merged, lateness, time.watermark)) return false;
    const acc = agg.create();
    const freed = new Set<number>();
    for (const a of absorbed) {
      const st = windows.get(a.start)!;
      agg.merge(acc, st[2]);
      windows.remove(a.start);
      freed.add(timerOf(a.end, st[1]));
    }
    // A key has one timer per time: keep those another of its sessions still waits for.
    for (const [, st] of windows.entries()) freed.delete(timerOf(st[0], st[1]));
    for (const t of freed) timers.delete(t);
    agg.add(acc, values);
    const now = eventTime ? time.watermark : Date.now();
    const st: WindowState = [merged.end, 0, acc];
    windows.put(merged.start, st);
    if (maxTimestamp(merged) <= now) {
      // A late record (within the allowed lateness) made or grew a session that is due already.
      emit(backend.currentKey, merged.start, st, out);
      st[1] = 1;
      schedule(merged, true);
    } else schedule(merged, false);
    return true;
  };

  return {
    process(rec: Rec, _key, out) {
      const ts = eventTime ? time.timestamp : Date.now();
      if (ts === undefined)
        return ctx.deadLetter(rec, 'window: the record has no event time (give its source a timestamp field, or use ingestion time)');
      const values = agg.values(rec);
      if (typeof values === 'string') return ctx.deadLetter(rec, values);
      if (s.assigner === 'session') {
        if (!addToSession(ts, values, out)) late(rec, lateReason(ts));
        return;
      }
      let accepted = false;
      for (const w of assign(ts)) {
        if (eventTime && isWindowLate(w, lateness, time.watermark)) continue;
        accepted = true;
        addTo(w, values, out);
      }
      if (!accepted) late(rec, lateReason(ts));
    },
    onWatermark(watermark, out) {
      time.watermark = watermark;
      // The end of the input closes processing-time windows too.
      if (eventTime || watermark === Infinity) timers.advance(watermark, () => fire(watermark, out));
    },
    onProcessingTime(now, out) {
      if (!eventTime) timers.advance(now, () => fire(now, out));
    },
  };

  function lateReason(ts: number) {
    return `late: event time ${iso(ts)} is more than the allowed lateness (${lateness} ms) behind the watermark ${iso(time.watermark)}`;
  }
}
