import { END_OF_INPUT_WATERMARK, type JobMetrics } from '@keyflow/api';

// Event time on the job page (DESIGN §11): where each operator and subtask stands, how far behind the wall clock,
// and which subtask holds the job back.

type VertexMetrics = JobMetrics['vertices'][string];

/** Where a watermark stands: advancing, idle (it holds nothing back), its input ended, or none yet. */
export type WatermarkStatus = 'active' | 'idle' | 'ended' | 'none';

export const STATUS_TEXT: Record<WatermarkStatus, string> = {
  active: 'active',
  idle: 'idle',
  ended: 'end of input',
  none: 'no watermark yet',
};

/** A watermark's status: its input's end first (it holds nothing back for good), then idleness, then whether it has one. */
export function watermarkStatus(watermark: number | null, idle: boolean): WatermarkStatus {
  if (watermark === END_OF_INPUT_WATERMARK) return 'ended';
  if (idle) return 'idle';
  return watermark === null ? 'none' : 'active';
}

/** How far event time trails the wall clock, ms (never below 0: a watermark ahead of the clock is no lag); only while active. */
export function watermarkLag(watermark: number | null, idle: boolean, now: number): number | undefined {
  return watermarkStatus(watermark, idle) === 'active' ? Math.max(0, now - watermark!) : undefined;
}

/** A lag in a few characters: "850 ms", "2.1 s", "3m 05s", "2h 05m", "332d 04h". */
export function formatLag(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(Math.floor(ms / 100) / 10).toFixed(1)} s`;
  const s = Math.floor(ms / 1000);
  const two = (n: number) => String(n).padStart(2, '0');
  if (s < 3600) return `${Math.floor(s / 60)}m ${two(s % 60)}s`;
  if (s < 86_400) return `${Math.floor(s / 3600)}h ${two(Math.floor((s % 3600) / 60))}m`;
  return `${Math.floor(s / 86_400)}d ${two(Math.floor((s % 86_400) / 3600))}h`;
}

/** A watermark as the time of day with ms ("14:03:07.250"), and with its date for a tooltip; in `timeZone` (default: the browser's). */
export function formatWatermark(watermark: number, timeZone?: string): { time: string; date: string } {
  const parts = new Intl.DateTimeFormat('en-CA', {
    year: 'numeric',
    month: '2-digit',
    day: '2-digit',
    hour: '2-digit',
    minute: '2-digit',
    second: '2-digit',
    fractionalSecondDigits: 3,
    hourCycle: 'h23',
    timeZone,
  }).formatToParts(watermark);
  const part = (type: Intl.DateTimeFormatPartTypes) => parts.find((p) => p.type === type)?.value ?? '';
  const time = `${part('hour')}:${part('minute')}:${part('second')}.${part('fractionalSecond')}`;
  return { time, date: `${part('year')}-${part('month')}-${part('day')} ${time}` };
}

/** What an operator's node shows of its watermark; undefined while it has none (nothing is shown then). */
export interface NodeWatermark {
  status: Exclude<WatermarkStatus, 'none'>;
  /** "14:03:07.250", "idle" or "end of input". */
  text: string;
  /** The full date and time, for the tooltip. */
  title?: string;
  /** "2.1 s", while active. */
  lag?: string;
  /** The watermark, ms (for tests and tooltips), while active. */
  value?: number;
}

/** Why no lag is shown where event time is a generated source's own clock. */
export const OWN_CLOCK_HELP =
  'event time of generated events: a clock of their own, from the source’s start time and as fast as its rate, so no lag behind the wall clock is shown';

/**
 * An operator's low watermark as its node shows it: idle when all its subtasks are; nothing before it has one. With
 * `ownClock` (only generated sources upstream: see ownClockVertices) without its lag behind the wall clock.
 */
export function nodeWatermark(
  metrics: Pick<VertexMetrics, 'lowWatermark' | 'idle'> | undefined,
  now: number,
  { timeZone, ownClock = false }: { timeZone?: string; ownClock?: boolean } = {},
): NodeWatermark | undefined {
  if (!metrics) return undefined;
  const status = watermarkStatus(metrics.lowWatermark, metrics.idle);
  if (status === 'none') return undefined;
  if (status !== 'active') return { status, text: STATUS_TEXT[status] };
  const wm = metrics.lowWatermark!;
  const { time, date } = formatWatermark(wm, timeZone);
  if (ownClock) return { status, text: time, title: `low watermark ${date}; ${OWN_CLOCK_HELP}`, value: wm };
  return { status, text: time, title: `low watermark ${date}`, lag: formatLag(watermarkLag(wm, false, now)!), value: wm };
}

/** One subtask's row on the Watermarks tab. */
export interface WatermarkRow {
  vertexId: string;
  index: number;
  watermark: number | null;
  status: WatermarkStatus;
  /** ms behind the wall clock, while active (also where it is not shown: it still sorts the rows). */
  lag: number | undefined;
  /** Its event time is a generated source's own clock: its lag is not shown. */
  ownClock: boolean;
  lateRecords: number;
}

/** Every subtask's watermark, lag and late records; `ownClock` names the operators on a generated clock. */
export function watermarkRows(metrics: JobMetrics | null | undefined, now: number, ownClock: ReadonlySet<string> = new Set()): WatermarkRow[] {
  return (metrics?.subtasks ?? []).map((s) => ({
    vertexId: s.vertexId,
    index: s.index,
    watermark: s.watermark,
    status: watermarkStatus(s.watermark, s.idle),
    lag: watermarkLag(s.watermark, s.idle, now),
    ownClock: ownClock.has(s.vertexId),
    lateRecords: s.lateRecords,
  }));
}

export type WatermarkColumn = 'operator' | 'subtask' | 'watermark' | 'lag' | 'status' | 'late';
export interface WatermarkSort {
  column: WatermarkColumn;
  descending: boolean;
}

/** The useful first view: the subtask holding the job back at the top. */
export const DEFAULT_WATERMARK_SORT: WatermarkSort = { column: 'lag', descending: true };

/** The sort a click on a column's header asks for: the same column flips, another starts descending for figures. */
export function nextSort(current: WatermarkSort, column: WatermarkColumn): WatermarkSort {
  if (current.column === column) return { column, descending: !current.descending };
  return { column, descending: column === 'lag' || column === 'late' };
}

/**
 * How far a subtask holds its operator back, for sorting by lag: one without a watermark holds it at none (the most),
 * an active one by its lag, one whose input ended not at all; an idle one is no part of it (undefined: listed last).
 */
const holdBack = (r: WatermarkRow): number | undefined =>
  r.status === 'none' ? Infinity : r.status === 'active' ? r.lag : r.status === 'ended' ? -Infinity : undefined;

const STATUS_ORDER: Record<WatermarkStatus, number> = { none: 0, active: 1, idle: 2, ended: 3 };

function sortValue(r: WatermarkRow, column: WatermarkColumn, rank: (id: string) => number): number | undefined {
  switch (column) {
    case 'operator':
      return rank(r.vertexId);
    case 'subtask':
      return r.index;
    case 'watermark':
      return r.status === 'none' ? -Infinity : (r.watermark ?? undefined);
    case 'lag':
      return holdBack(r);
    case 'status':
      return STATUS_ORDER[r.status];
    case 'late':
      return r.lateRecords;
  }
}

/**
 * The rows in the order asked for; rows the column says nothing about (an idle subtask's lag) last either way, ties
 * in the graph's order (`vertexOrder`; others after it, by id) and by subtask index.
 */
export function sortWatermarkRows(rows: readonly WatermarkRow[], sort: WatermarkSort, vertexOrder: readonly string[] = []): WatermarkRow[] {
  const rank = (id: string) => {
    const i = vertexOrder.indexOf(id);
    return i < 0 ? vertexOrder.length : i;
  };
  const tie = (a: WatermarkRow, b: WatermarkRow) => rank(a.vertexId) - rank(b.vertexId) || a.vertexId.localeCompare(b.vertexId) || a.index - b.index;
  return [...rows].sort((a, b) => {
    const x = sortValue(a, sort.column, rank);
    const y = sortValue(b, sort.column, rank);
    if (x === undefined || y === undefined) return (x === undefined ? 1 : 0) - (y === undefined ? 1 : 0) || tie(a, b);
    const order = x === y ? 0 : x < y ? -1 : 1;
    return (sort.descending ? -order : order) || tie(a, b);
  });
}
