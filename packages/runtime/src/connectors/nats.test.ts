import { jetstreamManager } from '@nats-io/jetstream';
import { describe, expect, it } from 'vitest';
import { natsConnect, natsServers, natsStream, subjectsOverlap } from './nats.ts';

describe('natsServers', () => {
  it.each([
    ['nats://127.0.0.1:4222', 'nats://127.0.0.1:4222'],
    ['nats://user:secret@a:4222', 'nats://a:4222'],
    ['tls://token@a:4222,nats://u:p@b:4222', 'tls://a:4222,nats://b:4222'],
  ])('names %s without credentials: %s', (url, named) => {
    expect(natsServers({ url })).toBe(named);
  });
});

describe('subjectsOverlap', () => {
  it.each([
    ['orders.1', 'orders.1', true],
    ['orders.1', 'orders.2', false],
    ['orders.*', 'orders.1', true],
    ['orders.1', 'orders.>', true],
    ['orders', 'orders.>', false],
    ['orders.>', 'orders.a.b', true],
    ['*.1', 'orders.*', true],
    ['orders.1.x', 'orders.1', false],
    ['>', 'anything.at.all', true],
    ['a.*.c', 'a.b.d', false],
  ])('%s and %s: %s', (a, b, overlap) => {
    expect(subjectsOverlap(a, b)).toBe(overlap);
    expect(subjectsOverlap(b, a)).toBe(overlap);
  });
});

describe('natsConnect', () => {
  it('connects to the servers of a profile, where JetStream answers', async () => {
    const nc = await natsConnect({ url: 'nats://127.0.0.1:4222' });
    try {
      const jsm = await jetstreamManager(nc);
      await expect(natsStream(jsm, 'kft_no_such_stream', 'nats://127.0.0.1:4222')).rejects.toThrow(
        "stream 'kft_no_such_stream' does not exist on nats://127.0.0.1:4222",
      );
    } finally {
      await nc.close();
    }
  });

  it('rejects when no server answers', async () => {
    await expect(natsConnect({ url: 'nats://127.0.0.1:1' })).rejects.toThrow();
  });
});
