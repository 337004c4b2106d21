import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createConnection, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { Redis } from 'ioredis';
import { startTcpProxy } from './tcpProxy.ts';

/** A redis-server of one test's own, on a free port, that the test may kill and bring back empty. */
export interface RedisServer {
  url: string;
  port: number;
  /** What a kill and restart act on, for the test's log. */
  what: string;
  /** Whether the server process is alive. */
  readonly running: boolean;
  /** Kills the server with SIGKILL, as a crash would; returns once the process is gone. */
  kill(): Promise<void>;
  /** Starts a new, empty server on the same port; returns once it answers. */
  restart(): Promise<void>;
  /** Stops the server for good. */
  stop(): Promise<void>;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}

/** True when a Redis on `port` answers PING. */
function pings(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host: '127.0.0.1', port });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(1000, () => done(false));
    socket.once('error', () => done(false));
    socket.once('connect', () => socket.write('PING\r\n'));
    socket.once('data', (data) => done(data.toString().startsWith('+PONG')));
  });
}

function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once('exit', () => resolve()));
}

/**
 * Starts `redis-server` from PATH on a free port, keeping nothing on disk. Without one on PATH (a machine that
 * reaches a Redis it does not run), the nearest thing: a proxy in front of REDIS_URL that drops every connection
 * (the kill), and on restart deletes the keys `keys` matches (the test's own prefix) before it lets clients back.
 */
export async function startRedisServer(opts: { keys: () => string }): Promise<RedisServer> {
  // KEYFLOW_TEST_REDIS=proxy chooses the proxy even where redis-server is on PATH.
  if (process.env.KEYFLOW_TEST_REDIS === 'proxy' || spawnSync('redis-server', ['--version']).error) return proxiedRedis(opts.keys);
  return ownRedisServer();
}

async function proxiedRedis(keys: () => string): Promise<RedisServer> {
  const target = new URL(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379');
  const proxy = await startTcpProxy({ host: target.hostname, port: Number(target.port || 6379) });
  console.log(
    `[redis] no redis-server on PATH: a restart of ${target.host} is played by a proxy that drops its connections and deletes this test's keys`,
  );
  let running = true;
  return {
    url: proxy.via(target.toString()),
    port: proxy.port,
    what: `the proxy to ${target.host}`,
    get running() {
      return running;
    },
    async kill() {
      await proxy.cut();
      running = false;
    },
    async restart() {
      if (running) await proxy.cut();
      const direct = new Redis(target.toString(), { maxRetriesPerRequest: null });
      try {
        for await (const batch of direct.scanStream({ match: keys(), count: 1000 }) as AsyncIterable<string[]>)
          if (batch.length) await direct.unlink(...batch);
      } finally {
        direct.disconnect();
      }
      await proxy.restore();
      running = true;
    },
    async stop() {
      await proxy.close();
      running = false;
    },
  };
}

async function ownRedisServer(): Promise<RedisServer> {
  const port = await freePort();
  let child: ChildProcess | undefined;
  let output = '';

  const launch = async () => {
    output = '';
    // --save '' and no AOF: a restarted server comes back empty, as a cache-only Redis does after a crash.
    const proc = spawn('redis-server', ['--bind', '127.0.0.1', '--port', String(port), '--save', '', '--appendonly', 'no', '--dir', tmpdir()], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const keep = (b: Buffer) => (output = (output + b.toString()).slice(-4000));
    proc.stdout!.on('data', keep);
    proc.stderr!.on('data', keep);
    const spawnError = new Promise<never>((_, reject) =>
      proc.once('error', (err) => reject(new Error(`could not start redis-server: ${err.message}`))),
    );
    spawnError.catch(() => {});
    child = proc;
    const deadline = Date.now() + 15_000;
    for (;;) {
      if (await Promise.race([pings(port), spawnError])) return;
      if (proc.exitCode !== null || Date.now() > deadline) {
        proc.kill('SIGKILL');
        throw new Error(`redis-server did not answer on port ${port}; its output:\n${output}`);
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  };
  await launch();

  const kill = async () => {
    if (!child) return;
    child.kill('SIGKILL');
    await exited(child);
  };
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    what: `redis-server :${port}`,
    get running() {
      return !!child && child.exitCode === null && child.signalCode === null;
    },
    kill,
    async restart() {
      await kill();
      await launch();
    },
    stop: kill,
  };
}
