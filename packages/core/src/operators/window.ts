import type { Rec } from '../codec.ts';
import type { Key } from '../hashing.ts';
import type { WindowSettings } from '../operatorCatalog.ts';
import { defineOperator, mapState, type ProcessContext } from '../sdk/define.ts';
import {
  Aggregator,
  isWindowLate,
  type Accumulator,
  maxTimestamp,
  mergeSession,
  parseAggregates,
  slidingWindows,
  tumblingWindow,
  type Window,
} from '../windows.ts';
import { builtin } from './builtin.ts';

/** A window's state: its end, whether it fired (kept until its allowed lateness is over), and its accumulator. */
type WindowState = [end: number, fired: 0 | 1, acc: Accumulator];

const state = { windows: mapState<number, WindowState>() };
type Ctx = ProcessContext<WindowSettings, typeof state>;

const iso = (t: number) => (Number.isFinite(t) ? new Date(t).toISOString() : String(t));

/** What a window's settings make of it, worked out once per subtask (settings never change while it runs). */
interface Plan {
  agg: Aggregator;
  eventTime: boolean;
  lateness: number;
  assign(ts: number): Window[];
}

const plans = new WeakMap<WindowSettings, Plan>();
function planOf(s: WindowSettings): Plan {
  let p = plans.get(s);
  if (!p) {
    const parsed = parseAggregates(s.aggregates);
    if (!parsed.ok) throw new Error(parsed.message);
    const eventTime = s.time === 'event';
    p = {
      agg: new Aggregator(parsed.aggregates),
      eventTime,
      lateness: eventTime ? s.allowedLateness : 0,
      assign: (ts) => (s.assigner === 'sliding' ? slidingWindows(ts, s.size, s.slide!, s.offset) : [tumblingWindow(ts, s.size, s.offset)]),
    };
    plans.set(s, p);
  }
  return p;
}

/** "Now" on the window's clock: the watermark (event time) or the wall clock. */
const nowOf = (p: Plan, ctx: Ctx) => (p.eventTime ? ctx.watermark : ctx.timers.currentProcessingTime());

const emitWindow = (p: Plan, ctx: Ctx, key: Key | undefined, start: number, st: WindowState) =>
  ctx.emit({ key, windowStart: start, windowEnd: st[0], ...p.agg.result(st[2]) }, { timestamp: st[0] - 1 });

/** When a window's timer is due: at its end, or (fired, with lateness) at its cleanup. */
const timerOf = (p: Plan, end: number, fired: boolean | 0 | 1) => (fired ? end - 1 + p.lateness : end - 1);

/** Registers what a window waits for: firing at its end, or (fired, with lateness) its cleanup. */
function schedule(p: Plan, ctx: Ctx, w: Window, fired: boolean) {
  const t = timerOf(p, w.end, fired);
  if (p.eventTime) ctx.timers.registerEventTime(t);
  else ctx.timers.registerProcessingTime(t);
}

/**
 * Adds a record to one window of the current key; a window that fired already, or is due already, is emitted at once.
 * A window's timer is registered when its state is made, and moves with it (both are keyed state), so a record added
 * to a window that has state leaves the timers alone: one lookup of the key's timers less per record and window.
 */
function addTo(p: Plan, ctx: Ctx, w: Window, values: number[], rec: Rec) {
  const windows = ctx.state.windows;
  let st = windows.get(w.start);
  const made = !st;
  if (!st) windows.put(w.start, (st = [w.end, 0, p.agg.create()]));
  p.agg.add(st[2], values, rec);
  if (!st[1]) {
    const due = p.eventTime && maxTimestamp(w) <= ctx.watermark;
    if (!due) {
      if (made) schedule(p, ctx, w, false);
      return;
    }
    // A late record (within the allowed lateness) made a window the watermark has passed: it fires now.
    st[1] = 1;
    schedule(p, ctx, w, true);
  }
  emitWindow(p, ctx, ctx.currentKey, w.start, st);
}

/** Merges a record's session into the current key's sessions it touches. */
function addToSession(p: Plan, ctx: Ctx, ts: number, values: number[], rec: Rec): boolean {
  const windows = ctx.state.windows;
  const sessions: Window[] = [];
  for (const [start, st] of windows.entries()) sessions.push({ start, end: st[0] });
  const { merged, absorbed } = mergeSession(sessions, ts, ctx.settings.gap!);
  if (p.eventTime && isWindowLate(merged, p.lateness, ctx.watermark)) return false;
  const acc = p.agg.create();
  const freed = new Set<number>();
  for (const a of absorbed) {
    const st = windows.get(a.start)!;
    p.agg.merge(acc, st[2]);
    windows.remove(a.start);
    freed.add(timerOf(p, a.end, st[1]));
  }
  // A key has one timer per time: keep those another of its sessions still waits for.
  for (const [, st] of windows.entries()) freed.delete(timerOf(p, st[0], st[1]));
  for (const t of freed) {
    if (p.eventTime) ctx.timers.deleteEventTime(t);
    else ctx.timers.deleteProcessingTime(t);
  }
  p.agg.add(acc, values, rec);
  const st: WindowState = [merged.end, 0, acc];
  windows.put(merged.start, st);
  if (maxTimestamp(merged) <= nowOf(p, ctx)) {
    // A late record (within the allowed lateness) made or grew a session that is due already.
    emitWindow(p, ctx, ctx.currentKey, merged.start, st);
    st[1] = 1;
    schedule(p, ctx, merged, true);
  } else schedule(p, ctx, merged, false);
  return true;
}

function lateReason(p: Plan, ctx: Ctx, ts: number) {
  return `late: event time ${iso(ts)} is more than the allowed lateness (${p.lateness} ms) behind the watermark ${iso(ctx.watermark)}`;
}

/**
 * A keyed window (DESIGN §11): tumbling, sliding or session windows over event time or processing time, with
 * aggregates. Window contents are a map state per key (window start → state) and fire times are keyed timers, so
 * both live in key groups: checkpointed, restored and moved by a live rescale like any keyed state. A window fires
 * when the watermark passes its end (processing time: the wall clock), emitting `{key, windowStart, windowEnd,
 * ...aggregates}` timestamped at its last millisecond. A record for a window that fired but is within the allowed
 * lateness updates and re-emits it; one later than that goes to the late output.
 */
export const windowOperator = defineOperator({
  ...builtin('window'),
  inputs: 'keyed',
  state,
  open(ctx) {
    planOf(ctx.settings);
  },
  process(rec, ctx) {
    const p = planOf(ctx.settings);
    const ts = p.eventTime ? ctx.timestamp : ctx.timers.currentProcessingTime();
    if (ts === undefined)
      return ctx.deadLetter(rec, 'window: the record has no event time (give its source a timestamp field, or use ingestion time)');
    const values = p.agg.values(rec);
    if (typeof values === 'string') return ctx.deadLetter(rec, values);
    if (ctx.settings.assigner === 'session') {
      if (!addToSession(p, ctx, ts, values, rec)) ctx.late(rec, lateReason(p, ctx, ts));
      return;
    }
    let accepted = false;
    for (const w of p.assign(ts)) {
      if (p.eventTime && isWindowLate(w, p.lateness, ctx.watermark)) continue;
      accepted = true;
      addTo(p, ctx, w, values, rec);
    }
    if (!accepted) ctx.late(rec, lateReason(p, ctx, ts));
  },
  /** Fires and cleans up the current key's windows due at `t`. */
  onTimer(t, ctx) {
    const p = planOf(ctx.settings);
    const windows = ctx.state.windows;
    const key = ctx.currentKey;
    const due: [number, WindowState][] = [];
    for (const e of windows.entries()) if (e[1][0] - 1 <= t) due.push(e);
    // In time order: a key's results go out as its windows end, whatever order they were made in.
    due.sort((a, b) => a[1][0] - b[1][0] || a[0] - b[0]);
    for (const [start, st] of due) {
      if (!st[1]) {
        emitWindow(p, ctx, key, start, st);
        if (p.lateness > 0 && st[0] - 1 + p.lateness > t) {
          st[1] = 1;
          schedule(p, ctx, { start, end: st[0] }, true);
          continue;
        }
      } else if (st[0] - 1 + p.lateness > t) continue;
      windows.remove(start);
    }
    if (windows.entries().next().done) windows.clear();
  },
});
