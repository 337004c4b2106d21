import { describe, expect, it } from 'vitest';
import { parseNumber, type NumberRule } from './numberInput';

const interval: NumberRule = { integer: false, min: 0.1, max: 3600, required: true, unit: ' s' };
const parallelism: NumberRule = { integer: true, min: 1, max: 128, required: true };
const total: NumberRule = { integer: true, min: 1, required: false };
const rate: NumberRule = { integer: false, min: 0, max: 10_000_000, required: false };
const seed: NumberRule = { integer: true, required: false };

describe('parseNumber: the value typed text stands for, or why none', () => {
  it.each<[string, NumberRule, string, number | undefined]>([
    ['a decimal', interval, '0.5', 0.5],
    ['the lower bound', interval, '0.1', 0.1],
    ['surrounding spaces', interval, ' 2 ', 2],
    ['a trailing point while typing', interval, '1.', 1],
    ['a leading point', interval, '.5', 0.5],
    ['an exponent', rate, '1e3', 1000],
    ['a whole number', parallelism, '12', 12],
    ['leading zeros', parallelism, '02', 2],
    ['an empty optional field: no value, the default applies', total, '', undefined],
    ['a negative number where nothing bounds it', seed, '-7', -7],
  ])('%s', (_name, rule, text, value) => {
    expect(parseNumber(text, rule)).toEqual({ ok: true, value });
  });

  it.each<[string, NumberRule, string, string]>([
    ['below the minimum', interval, '-5', 'at least 0.1 s'],
    ['zero where the minimum is 0.1', interval, '0', 'at least 0.1 s'],
    ['above the maximum', interval, '3601', 'at most 3600 s'],
    ['an empty required field', interval, '', 'required'],
    ['only spaces', interval, '   ', 'required'],
    ['a lone minus', interval, '-', 'a number from 0.1 to 3600 s'],
    ['text', interval, 'ten', 'a number from 0.1 to 3600 s'],
    ['hexadecimal', interval, '0x10', 'a number from 0.1 to 3600 s'],
    ['Infinity', rate, 'Infinity', 'a number from 0 to 10000000'],
    ['a fraction where a whole number is needed', parallelism, '1.5', 'a whole number from 1 to 128'],
    ['a negative parallelism', parallelism, '-2', 'a whole number from 1 to 128'],
    ['zero parallelism', parallelism, '0', 'a whole number from 1 to 128'],
    ['a parallelism above the maximum', parallelism, '129', 'a whole number from 1 to 128'],
    ['an empty parallelism', parallelism, '', 'required'],
    ['a fraction with only a minimum', total, '2.5', 'a whole number, at least 1'],
    ['a whole number too large to be exact', seed, '9007199254740993', 'a whole number'],
  ])('%s', (_name, rule, text, message) => {
    expect(parseNumber(text, rule)).toEqual({ ok: false, message });
  });
});
