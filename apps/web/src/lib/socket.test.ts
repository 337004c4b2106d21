import { EventEmitter } from 'node:events';
import type { KeyflowSocket } from '@keyflow/api';
import { QueryClient } from '@tanstack/react-query';
import { describe, expect, it } from 'vitest';
import { queryKeys } from './api';
import { followJob, liveStatus, startLiveUpdates, stopLiveUpdates } from './socket';

/** A stand-in for the Socket.IO client: `fire` plays the server, `sent` records what the page emitted. */
function fakeSocket() {
  const events = new EventEmitter();
  const sent: unknown[][] = [];
  const socket = {
    connected: false,
    on: (event: string, listener: (...args: unknown[]) => void) => events.on(event, listener),
    off: (event: string, listener: (...args: unknown[]) => void) => events.off(event, listener),
    emit: (...args: unknown[]) => sent.push(args),
    connect: () => sent.push(['connect()']),
    close: () => events.removeAllListeners(),
  };
  const fire = (event: string, payload?: unknown) => {
    socket.connected = event === 'connect' || (socket.connected && event !== 'disconnect');
    events.emit(event, payload);
  };
  return { socket: socket as unknown as KeyflowSocket, sent, fire };
}

describe('live updates over Socket.IO', () => {
  it('join the followed job rooms, and after a dropped connection join them again and refetch everything', async () => {
    const client = new QueryClient();
    client.setQueryData(queryKeys.jobs, []);
    const { socket, sent, fire } = fakeSocket();
    const stop = startLiveUpdates(client, socket);
    const unfollow = followJob('job-1');
    expect(liveStatus()).toBe('connecting');

    fire('connect');
    expect(liveStatus()).toBe('live');
    expect(sent).toEqual([['job:subscribe', 'job-1']]);
    expect(client.getQueryState(queryKeys.jobs)!.isInvalidated).toBe(false);

    fire('disconnect');
    expect(liveStatus()).toBe('reconnecting');
    fire('connect');
    expect(liveStatus()).toBe('live');
    expect(sent).toEqual([
      ['job:subscribe', 'job-1'],
      ['job:subscribe', 'job-1'],
    ]);
    expect(client.getQueryState(queryKeys.jobs)!.isInvalidated).toBe(true);

    unfollow();
    expect(sent.at(-1)).toEqual(['job:unsubscribe', 'job-1']);
    stop();
  });

  it('events go into the cache while connected', () => {
    const client = new QueryClient();
    client.setQueryData(queryKeys.jobs, [{ id: 'job-2', state: 'RUNNING', attempt: 1, endedAt: null }]);
    const { socket, fire } = fakeSocket();
    const stop = startLiveUpdates(client, socket);
    fire('connect');
    fire('job:state', { jobId: 'job-2', attempt: 1, from: 'RUNNING', to: 'CANCELED', reason: null, at: '2026-01-01T00:00:00.000Z' });
    expect(client.getQueryData<{ state: string }[]>(queryKeys.jobs)![0]!.state).toBe('CANCELED');
    stop();
  });

  it('a handshake refused as unauthorized is reported once per refusal; other connection errors are not', () => {
    const { socket, fire } = fakeSocket();
    const refused: string[] = [];
    startLiveUpdates(new QueryClient(), socket, { onUnauthorized: () => refused.push('unauthorized') });
    fire('connect_error', new Error('xhr poll error'));
    expect(refused).toEqual([]);
    fire('connect_error', new Error('unauthorized'));
    expect(refused).toEqual(['unauthorized']);
    expect(liveStatus()).toBe('connecting');
  });

  it('a connection the control plane closed (the session ended) connects again, to be refused or go on', () => {
    const { socket, sent, fire } = fakeSocket();
    startLiveUpdates(new QueryClient(), socket);
    fire('connect');
    fire('disconnect', 'transport close');
    expect(sent).toEqual([]);
    fire('disconnect', 'io server disconnect');
    expect(sent).toEqual([['connect()']]);
    expect(liveStatus()).toBe('reconnecting');
  });

  it('signing out closes the connection, and a new sign-in replaces it', () => {
    const first = fakeSocket();
    startLiveUpdates(new QueryClient(), first.socket);
    first.fire('connect');
    expect(liveStatus()).toBe('live');
    const second = fakeSocket();
    startLiveUpdates(new QueryClient(), second.socket);
    expect(liveStatus()).toBe('connecting');
    first.fire('connect');
    expect(liveStatus()).toBe('connecting');
    second.fire('connect');
    expect(liveStatus()).toBe('live');
    stopLiveUpdates();
    expect(liveStatus()).toBe('connecting');
    second.fire('connect');
    expect(liveStatus()).toBe('connecting');
  });
});
