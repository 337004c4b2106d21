import net from 'node:net';

/** A TCP proxy that delays every chunk by `delayMs` in each direction: a server `2 · delayMs` of round trip away. */
export interface DelayProxy {
  port: number;
  /** A Redis URL that reaches the target through the proxy (database `dbIndex` when given). */
  url(dbIndex?: number): string;
  close(): Promise<void>;
}

/** Bytes one direction of a connection holds before it stops reading its source. */
const HIGH_WATER = 4 * 1024 * 1024;

/**
 * Forwards what `from` sends to `to`, each chunk `delayMs` after it came and in the order it came; `from` is paused
 * while more than HIGH_WATER bytes wait, or while `to` does not take more. Returns what stops its timer.
 */
function forwardDelayed(from: net.Socket, to: net.Socket, delayMs: number): () => void {
  const queue: { chunk: Buffer; due: number }[] = [];
  let bytes = 0;
  let timer: NodeJS.Timeout | undefined;
  let blocked = false;
  let ended = false;
  const release = () => {
    timer = undefined;
    const now = performance.now();
    while (queue.length && !blocked && queue[0]!.due <= now) {
      const { chunk } = queue.shift()!;
      bytes -= chunk.length;
      if (!to.write(chunk)) blocked = true;
    }
    if (bytes <= HIGH_WATER / 2 && from.isPaused()) from.resume();
    if (!queue.length && ended && to.writable) to.end();
    else if (queue.length && !blocked) timer = setTimeout(release, Math.ceil(queue[0]!.due - now));
  };
  to.on('drain', () => {
    blocked = false;
    if (!timer) release();
  });
  from.on('data', (chunk: Buffer) => {
    queue.push({ chunk, due: performance.now() + delayMs });
    bytes += chunk.length;
    if (bytes > HIGH_WATER) from.pause();
    // A timer is set whenever chunks wait and `to` takes more: only the first of a quiet spell starts one.
    if (!timer && !blocked) release();
  });
  from.on('end', () => {
    ended = true;
    if (!timer && !blocked) release();
  });
  return () => clearTimeout(timer);
}

/** Starts a delay proxy on a free port of 127.0.0.1 in front of `target`. */
export async function startDelayProxy(opts: { target: { host: string; port: number }; delayMs: number }): Promise<DelayProxy> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer({ noDelay: true }, (client) => {
    const upstream = net.connect({ host: opts.target.host, port: opts.target.port, noDelay: true });
    const stops = [forwardDelayed(client, upstream, opts.delayMs), forwardDelayed(upstream, client, opts.delayMs)];
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('error', () => {});
      s.on('close', () => {
        sockets.delete(s);
        for (const stop of stops) stop();
        client.destroy();
        upstream.destroy();
      });
    }
  });
  await new Promise<void>((resolve, reject) => server.once('error', reject).listen(0, '127.0.0.1', () => resolve()));
  const port = (server.address() as net.AddressInfo).port;
  return {
    port,
    url: (dbIndex) => `redis://127.0.0.1:${port}${dbIndex === undefined ? '' : `/${dbIndex}`}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const s of sockets) s.destroy();
      }),
  };
}
