import { describe, expect, it } from 'vitest';
import { lagText, nodeSourceLag } from './sourceLag';

describe('source lag on the node', () => {
  it('says messages, bytes and time behind as the broker can tell, and caught up when nothing is', () => {
    expect(lagText({ messages: 12_345, ms: 2100 })).toBe('12,345 msgs · 2.1 s');
    expect(lagText({ bytes: 4 * 1024 * 1024 })).toBe('4.0 MB');
    expect(lagText({ messages: 1 })).toBe('1 msg');
    expect(lagText({ messages: 0, ms: 0 })).toBe('caught up');
    expect(lagText({})).toBe('unknown');
  });

  it('lists every split in the tooltip, and shows nothing for a source that reports no lag', () => {
    const lag = nodeSourceLag({
      splits: [
        { split: 0, name: 'orders.0', messages: 10 },
        { split: 1, name: 'orders.1', messages: 0 },
      ],
      messages: 10,
    });
    expect(lag).toEqual({ text: '10 msgs', behind: true, title: expect.stringContaining('orders.0: 10 msgs\norders.1: caught up') });
    expect(nodeSourceLag(undefined)).toBeUndefined();
    expect(nodeSourceLag({ splits: [] })).toBeUndefined();
  });
});
