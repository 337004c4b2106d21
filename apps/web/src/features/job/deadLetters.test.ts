import type { JobMetrics } from '@keyflow/api';
import { describe, expect, it } from 'vitest';
import { operatorsWithDeadLetters, recordPreview } from './deadLetters';

const vertex = (deadLetters: number) => ({
  recordsInPerSec: 0,
  recordsOutPerSec: 0,
  backpressure: 0,
  busy: 0,
  deadLetters,
  recordsIn: 0,
  recordsOut: 0,
  lowWatermark: null,
  idle: false,
  lateRecords: 0,
});
const metrics = (counts: Record<string, number>): JobMetrics => ({
  jobId: 'j',
  at: new Date(0).toISOString(),
  vertices: Object.fromEntries(Object.entries(counts).map(([id, n]) => [id, vertex(n)])),
  subtasks: [],
});

describe('the operators with dead letters', () => {
  it('are those with any, in the graph’s order, unknown ones last by id', () => {
    const m = metrics({ sink: 3, zeta: 1, events: 0, alpha: 2, map: 5 });
    expect(operatorsWithDeadLetters(m, ['events', 'map', 'sink'])).toEqual([
      { vertexId: 'map', total: 5 },
      { vertexId: 'sink', total: 3 },
      { vertexId: 'alpha', total: 2 },
      { vertexId: 'zeta', total: 1 },
    ]);
  });

  it('are none before any metrics', () => {
    expect(operatorsWithDeadLetters(null)).toEqual([]);
    expect(operatorsWithDeadLetters(metrics({ map: 0 }))).toEqual([]);
  });
});

describe('a dead-lettered record, shown short', () => {
  it.each([
    [{ user: 'u1', amount: 'x' }, '{"user":"u1","amount":"x"}'],
    ['AAEC', '"AAEC"'],
    [null, 'null'],
    [undefined, 'undefined'],
  ])('%o reads as %s', (record, text) => {
    expect(recordPreview(record)).toEqual({ text, full: text, truncated: false });
  });

  it('is cut at the limit with an ellipsis, the whole JSON kept for the tooltip', () => {
    const record = { text: 'a'.repeat(300) };
    const preview = recordPreview(record, 20);
    expect(preview.text).toHaveLength(20);
    expect(preview.text.endsWith('…')).toBe(true);
    expect(preview.full).toBe(JSON.stringify(record));
    expect(preview.truncated).toBe(true);
  });

  it('survives records JSON cannot write', () => {
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    expect(recordPreview(cyclic).text).toBe('[object Object]');
    expect(recordPreview(10n).text).toBe('10');
  });
});
