'use client';
import { connectKeyflowSocket, type KeyflowSocket } from '@keyflow/api';
import type { QueryClient } from '@tanstack/react-query';
import { useEffect, useSyncExternalStore } from 'react';
import { bindEventsToCache } from './liveCache';

export type LiveStatus = 'connecting' | 'live' | 'reconnecting';

let socket: KeyflowSocket | undefined;
let status: LiveStatus = 'connecting';
const listeners = new Set<() => void>();
/** Job rooms this page follows, counted, so they can be joined again after a reconnect. */
const rooms = new Map<string, number>();

function setStatus(next: LiveStatus) {
  status = next;
  for (const l of listeners) l();
}

let stopCurrent: (() => void) | undefined;

/**
 * Feeds the page's one Socket.IO connection (same origin: `/socket.io` is proxied to the control plane, the session
 * cookie authenticates it) into the query cache. After a dropped connection, it joins its rooms again and refetches
 * every query, since events sent meanwhile are lost: the page shows the truth again, not a stale picture. A
 * handshake the control plane refuses as unauthorized (the session ended) calls `onUnauthorized`; Socket.IO does not
 * retry a refused handshake by itself.
 */
export function startLiveUpdates(
  client: QueryClient,
  connection: KeyflowSocket = connectKeyflowSocket(''),
  { onUnauthorized }: { onUnauthorized?: () => void } = {},
): () => void {
  stopCurrent?.();
  const s = connection;
  socket = s;
  let everConnected = false;
  const unbind = bindEventsToCache(s, client);
  s.on('connect', () => {
    for (const jobId of rooms.keys()) s.emit('job:subscribe', jobId);
    if (everConnected) void client.invalidateQueries();
    everConnected = true;
    setStatus('live');
  });
  s.on('disconnect', (reason: string) => {
    setStatus('reconnecting');
    // The control plane closes the sockets of a user whose sessions ended (deleted, password reset); Socket.IO does
    // not reconnect after that by itself. Reconnecting asks again: a session that is gone is refused as unauthorized.
    if (reason === 'io server disconnect') s.connect();
  });
  s.on('connect_error', (error: Error) => {
    setStatus(everConnected ? 'reconnecting' : 'connecting');
    if (error.message === 'unauthorized') onUnauthorized?.();
  });
  const stop = () => {
    if (stopCurrent !== stop) return;
    stopCurrent = undefined;
    unbind();
    s.close();
    socket = undefined;
    setStatus('connecting');
  };
  stopCurrent = stop;
  return stop;
}

/** Closes the live connection, if one is open (signing out). */
export const stopLiveUpdates = () => stopCurrent?.();

export const liveStatus = () => status;

export function useLiveStatus(): LiveStatus {
  return useSyncExternalStore(
    (l) => (listeners.add(l), () => listeners.delete(l)),
    () => status,
    () => 'connecting' as const,
  );
}

/** Follows a job's room (now, and again after every reconnect) until the returned function is called. */
export function followJob(jobId: string): () => void {
  rooms.set(jobId, (rooms.get(jobId) ?? 0) + 1);
  if (socket?.connected) socket.emit('job:subscribe', jobId);
  return () => {
    const left = (rooms.get(jobId) ?? 1) - 1;
    if (left > 0) return void rooms.set(jobId, left);
    rooms.delete(jobId);
    if (socket?.connected) socket.emit('job:unsubscribe', jobId);
  };
}

/** Joins a job's room while the calling component is mounted. */
export function useJobRoom(jobId: string | undefined): void {
  useEffect(() => (jobId ? followJob(jobId) : undefined), [jobId]);
}
