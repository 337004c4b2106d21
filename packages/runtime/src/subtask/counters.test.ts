import { describe, expect, it } from 'vitest';
import { Counters } from './counters.ts';

describe('Counters', () => {
  it('counts per operator and zeroes on take', () => {
    const c = new Counters();
    c.of('a').recordsIn += 3;
    c.of('a').recordsOut += 2;
    expect(c.takeMetrics()).toEqual({ a: { recordsIn: 3, recordsOut: 2, deadLetters: 0, lateRecords: 0 } });
    expect(c.takeMetrics()).toEqual({ a: { recordsIn: 0, recordsOut: 0, deadLetters: 0, lateRecords: 0 } });
  });

  it('counts late records apart from dead letters, with samples of their own', () => {
    const c = new Counters();
    c.late('window', { user: 'u1', ts: 5 }, 'late: behind the watermark');
    c.deadLetter('window', { user: 'u2' }, 'no timestamp');
    expect(c.takeMetrics().window).toMatchObject({ deadLetters: 1, lateRecords: 1 });
    expect(JSON.parse(c.takeLateSamples().get('window')![0]!)).toMatchObject({ reason: 'late: behind the watermark', record: { user: 'u1', ts: 5 } });
    expect(c.takeSamples().get('window')).toHaveLength(1);
    expect(c.takeLateSamples().size).toBe(0);
  });

  it('counts dead letters, also of an operator in another chain, and keeps at most 100 samples each', () => {
    const c = new Counters();
    for (let i = 0; i < 150; i++) c.deadLetter('sink', { n: BigInt(i) }, 'no key');
    expect(c.takeMetrics().sink!.deadLetters).toBe(150);
    const samples = c.takeSamples().get('sink')!;
    expect(samples).toHaveLength(100);
    expect(JSON.parse(samples[0]!)).toMatchObject({ reason: 'no key', record: { n: '0' } });
    expect(c.takeSamples().size).toBe(0);
  });
});
