import { END_OF_INPUT_WATERMARK, type JobMetrics } from '@keyflow/api';
import { describe, expect, it } from 'vitest';
import {
  DEFAULT_WATERMARK_SORT,
  formatLag,
  formatWatermark,
  nextSort,
  nodeWatermark,
  OWN_CLOCK_HELP,
  sortWatermarkRows,
  watermarkLag,
  watermarkRows,
  watermarkStatus,
  type WatermarkRow,
} from './watermarks';

const NOW = Date.UTC(2026, 10, 29, 9, 30, 0);
const wm = (secondsBehind: number) => NOW - secondsBehind * 1000;

describe('a watermark', () => {
  it.each([
    [wm(2), false, 'active'],
    [wm(2), true, 'idle'],
    [null, true, 'idle'],
    [null, false, 'none'],
    [END_OF_INPUT_WATERMARK, false, 'ended'],
    [END_OF_INPUT_WATERMARK, true, 'ended'],
  ] as const)('%s (idle: %s) is %s', (watermark, idle, status) => {
    expect(watermarkStatus(watermark, idle)).toBe(status);
  });

  it('lags the wall clock only while it is active, never by less than nothing', () => {
    expect(watermarkLag(wm(2.1), false, NOW)).toBe(2100);
    expect(watermarkLag(NOW + 500, false, NOW)).toBe(0);
    expect(watermarkLag(wm(2), true, NOW)).toBeUndefined();
    expect(watermarkLag(null, false, NOW)).toBeUndefined();
    expect(watermarkLag(END_OF_INPUT_WATERMARK, false, NOW)).toBeUndefined();
  });

  it.each([
    [0, '0 ms'],
    [850, '850 ms'],
    [2149, '2.1 s'],
    [59_999, '59.9 s'],
    [185_000, '3m 05s'],
    [7_500_000, '2h 05m'],
    [332 * 86_400_000 + 4 * 3_600_000, '332d 04h'],
  ])('lag %d ms reads %s', (ms, text) => {
    expect(formatLag(ms)).toBe(text);
  });

  it('reads as the time of day with ms, the date for the tooltip', () => {
    expect(formatWatermark(Date.UTC(2026, 0, 1, 14, 3, 7, 250), 'UTC')).toEqual({ time: '14:03:07.250', date: '2026-01-01 14:03:07.250' });
    expect(formatWatermark(Date.UTC(2026, 0, 1, 0, 0, 0, 5), 'UTC').time).toBe('00:00:00.005');
  });
});

describe('an operator’s node', () => {
  const vertex = (lowWatermark: number | null, idle = false) => ({ lowWatermark, idle });

  it('shows its low watermark and its lag', () => {
    expect(nodeWatermark(vertex(Date.UTC(2026, 10, 29, 9, 29, 57, 900)), NOW, { timeZone: 'UTC' })).toEqual({
      status: 'active',
      text: '09:29:57.900',
      title: 'low watermark 2026-11-29 09:29:57.900',
      lag: '2.1 s',
      value: Date.UTC(2026, 10, 29, 9, 29, 57, 900),
    });
  });

  it('shows no lag where its event time is a generated source’s own clock (it started 2026-01-01: "lag 332d" meant nothing)', () => {
    expect(nodeWatermark(vertex(Date.UTC(2026, 0, 1, 0, 5, 0, 250)), NOW, { timeZone: 'UTC', ownClock: true })).toEqual({
      status: 'active',
      text: '00:05:00.250',
      title: `low watermark 2026-01-01 00:05:00.250; ${OWN_CLOCK_HELP}`,
      value: Date.UTC(2026, 0, 1, 0, 5, 0, 250),
    });
  });

  it('says idle or end of input instead of a time, and nothing (never NaN) before it has a watermark', () => {
    expect(nodeWatermark(vertex(null, true), NOW)).toEqual({ status: 'idle', text: 'idle' });
    expect(nodeWatermark(vertex(END_OF_INPUT_WATERMARK), NOW)).toEqual({ status: 'ended', text: 'end of input' });
    expect(nodeWatermark(vertex(null), NOW)).toBeUndefined();
    expect(nodeWatermark(undefined, NOW)).toBeUndefined();
  });
});

describe('the Watermarks tab', () => {
  const subtask = (vertexId: string, index: number, watermark: number | null, idle = false, lateRecords = 0) => ({
    vertexId,
    index,
    recordsInPerSec: 0,
    recordsOutPerSec: 0,
    backpressure: 0,
    busy: 0,
    deadLetters: 0,
    watermark,
    idle,
    lateRecords,
  });
  const metrics: JobMetrics = {
    jobId: 'j',
    at: new Date(NOW).toISOString(),
    vertices: {},
    subtasks: [
      subtask('events', 0, wm(1)),
      subtask('events', 1, null, true),
      subtask('window', 0, wm(3), false, 7),
      subtask('window', 1, wm(5)),
      subtask('window', 2, null),
      subtask('sink', 0, END_OF_INPUT_WATERMARK),
    ],
  };
  const rows = watermarkRows(metrics, NOW);
  const order = ['events', 'window', 'sink'];
  const keys = (sorted: WatermarkRow[]) => sorted.map((r) => `${r.vertexId}#${r.index}`);

  it('has a row per subtask with its status and lag; an idle one has no lag', () => {
    expect(rows.find((r) => r.vertexId === 'window' && r.index === 0)).toEqual({
      vertexId: 'window',
      index: 0,
      watermark: wm(3),
      status: 'active',
      lag: 3000,
      ownClock: false,
      lateRecords: 7,
    });
    expect(rows.find((r) => r.vertexId === 'events' && r.index === 1)).toMatchObject({ status: 'idle', lag: undefined });
    expect(watermarkRows(null, NOW)).toEqual([]);
    // On a generated clock the lag is kept for sorting, and marked not to be shown.
    expect(watermarkRows(metrics, NOW, new Set(['window'])).find((r) => r.vertexId === 'window' && r.index === 0)).toMatchObject({
      lag: 3000,
      ownClock: true,
    });
  });

  it('lists by lag first, the subtask holding the job back on top: none yet, then the most behind; idle ones last', () => {
    expect(DEFAULT_WATERMARK_SORT).toEqual({ column: 'lag', descending: true });
    expect(keys(sortWatermarkRows(rows, DEFAULT_WATERMARK_SORT, order))).toEqual([
      'window#2',
      'window#1',
      'window#0',
      'events#0',
      'sink#0',
      'events#1',
    ]);
    // Ascending, idle ones are still last: their lag says nothing.
    expect(keys(sortWatermarkRows(rows, { column: 'lag', descending: false }, order))).toEqual([
      'sink#0',
      'events#0',
      'window#0',
      'window#1',
      'window#2',
      'events#1',
    ]);
  });

  it('sorts by any column, ties in the graph’s order and by index', () => {
    expect(keys(sortWatermarkRows(rows, { column: 'operator', descending: false }, order))).toEqual([
      'events#0',
      'events#1',
      'window#0',
      'window#1',
      'window#2',
      'sink#0',
    ]);
    expect(keys(sortWatermarkRows(rows, { column: 'late', descending: true }, order))[0]).toBe('window#0');
    expect(keys(sortWatermarkRows(rows, { column: 'watermark', descending: false }, order))).toEqual([
      'window#2',
      'window#1',
      'window#0',
      'events#0',
      'sink#0',
      'events#1',
    ]);
    expect(keys(sortWatermarkRows(rows, { column: 'status', descending: false }, order)).slice(0, 2)).toEqual(['window#2', 'events#0']);
  });

  it('a header click flips its column, another column starts descending for figures, ascending for names', () => {
    expect(nextSort(DEFAULT_WATERMARK_SORT, 'lag')).toEqual({ column: 'lag', descending: false });
    expect(nextSort(DEFAULT_WATERMARK_SORT, 'late')).toEqual({ column: 'late', descending: true });
    expect(nextSort(DEFAULT_WATERMARK_SORT, 'operator')).toEqual({ column: 'operator', descending: false });
  });
});
