import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { duration, formatDuration, parseDuration } from './duration.ts';

describe('parseDuration', () => {
  it.each<[string, number]>([
    ['0', 0],
    ['250', 250],
    ['500ms', 500],
    ['10s', 10_000],
    ['1.5m', 90_000],
    ['2h', 7_200_000],
    ['1d', 86_400_000],
    ['-8h', -28_800_000],
    ['1.5s', 1500],
    ['0.4ms', 0],
    ['2.5ms', 3],
    ['10 s', 10_000],
    ['  30s  ', 30_000],
  ])('%j is %i ms', (text, ms) => {
    expect(parseDuration(text)).toBe(ms);
  });

  it.each(['', ' ', 's', '10x', '10 sec', '10seconds', '1w', '1y', '.5s', '1e3', '10S', '1h30m', '+5s', '--1s', 'ten', '10\ts', '9'.repeat(101)])(
    '%j is not a duration',
    (text) => {
      expect(parseDuration(text)).toBeUndefined();
    },
  );
});

describe('formatDuration', () => {
  it.each<[number, string]>([
    [0, '0ms'],
    [1, '1ms'],
    [999, '999ms'],
    [1000, '1s'],
    [1500, '1500ms'],
    [60_000, '1m'],
    [90_000, '90s'],
    [3_600_000, '1h'],
    [5_400_000, '90m'],
    [86_400_000, '1d'],
    [172_800_000, '2d'],
    [90_000_000, '25h'],
    [-28_800_000, '-8h'],
    [-1, '-1ms'],
  ])('%i ms is %j', (ms, text) => {
    expect(formatDuration(ms)).toBe(text);
  });

  it('reads back to the same number of ms, and is never longer than the ms themselves', () => {
    const sizes = [1, 1000, 60_000, 3_600_000, 86_400_000];
    for (const base of sizes)
      for (const n of [1, 2, 7, 59, 60, 61, 1000, 123_457])
        for (const sign of [1, -1]) {
          const ms = sign * n * base;
          const text = formatDuration(ms);
          expect(parseDuration(text), text).toBe(ms);
          expect(text.length, `${ms} → ${text}`).toBeLessThanOrEqual(`${ms}ms`.length);
        }
  });
});

describe('duration() setting', () => {
  it('takes typed text and gives ms', () => {
    expect(duration().parse('10s')).toBe(10_000);
    expect(duration().parse('250')).toBe(250);
    expect(duration().parse('0ms')).toBe(0);
  });

  it('says what a duration looks like when the text is not one', () => {
    const r = duration().safeParse('ten seconds');
    expect(r.success).toBe(false);
    expect(r.error?.issues.map((i) => i.message)).toEqual(["'ten seconds' is not a duration: a number and a unit, as 500ms, 10s, 1m, 2h or 1d"]);
  });

  it.each<[Parameters<typeof duration>[0], string, string | number]>([
    [{}, '-1s', '-1s is shorter than 0ms'],
    [{ min: 1 }, '0ms', '0ms is shorter than 1ms'],
    [{ min: 1 }, '1', 1],
    [{ min: 1000 }, '999ms', '999ms is shorter than 1s'],
    [{}, '365d', 365 * 86_400_000],
    [{}, '366d', '366d is longer than 365d'],
    [{ max: 60_000 }, '61s', '61s is longer than 1m'],
    [{ max: 60_000 }, '1m', 60_000],
    [{ signed: true }, '-8h', -28_800_000],
    [{ signed: true, min: -3_600_000 }, '-2h', '-2h is shorter than -1h'],
  ])('with %j, %j gives %j', (opts, text, expected) => {
    const r = duration(opts).safeParse(text);
    if (typeof expected === 'number') expect(r.data).toBe(expected);
    else expect(r.error?.issues.map((i) => i.message)).toEqual([expected]);
  });

  it('refuses what is not a string', () => {
    expect(duration().safeParse(10_000).success).toBe(false);
  });

  it("is a string with format 'duration' in the JSON schema of what is typed", () => {
    expect(z.toJSONSchema(duration(), { io: 'input' })).toMatchObject({ type: 'string', format: 'duration' });
  });
});
