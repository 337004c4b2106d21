import { describe, expect, it } from 'vitest';
import { parseEntry } from './channels.ts';

const fields = (...kv: string[]) => kv.map((x) => Buffer.from(x));

describe('parseEntry', () => {
  it.each([
    [fields('t', 'w', 's', '4', 'n', '7:31'), { type: 'barrier', seq: 4, checkpoint: 7, checkpointId: 31 }],
    [
      fields('t', 'w', 's', '5', 'n', '8:32:3:4:count'),
      { type: 'barrier', seq: 5, checkpoint: 8, checkpointId: 32, rescale: { scalingId: 3, parallelism: 4, chainId: 'count' } },
    ],
    [fields('t', 'e', 's', '9', 'n', '0'), { type: 'end', seq: 9 }],
  ])('reads %#', (f, entry) => {
    expect(parseEntry(f)).toEqual(entry);
  });

  it('returns undefined for malformed entries instead of throwing', () => {
    expect(parseEntry(fields('t', 'w', 's', '1', 'n', 'x:y'))).toBeUndefined();
    expect(parseEntry(fields('t', 'b', 's', '1'))).toBeUndefined();
    expect(parseEntry(fields('nonsense'))).toBeUndefined();
  });
});
