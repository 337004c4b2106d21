// Finds, or starts, the Postgres and Redis that Keyflow needs. Node built-ins only, except the
// embedded Postgres, which is an installed dependency by the time it is used.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import { ROOT } from './deps.mjs';
import { redisAnswers } from './redis.mjs';

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** True when something accepts TCP connections at host:port. */
export function tcpReachable(host, port, timeoutMs = 1000) {
  return new Promise((resolve) => {
    const socket = net.connect({ host, port });
    const done = (ok) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

export async function waitFor(check, timeoutMs, intervalMs = 250) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return true;
    await sleep(intervalMs);
  }
  return check();
}

export function commandExists(command) {
  return spawnSync('sh', ['-c', `command -v ${command}`], { stdio: 'ignore' }).status === 0;
}

export function hostPort(url, defaultPort) {
  const parsed = new URL(url);
  return { host: parsed.hostname || '127.0.0.1', port: Number(parsed.port || defaultPort) };
}

/** A TCP port that nothing listens on right now. */
export function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/** Starts the machine's Postgres cluster (Debian's pg_ctlcluster) if there is one; true on success. */
export async function startSystemPostgres(host, port) {
  if (!commandExists('pg_ctlcluster') || !existsSync('/etc/postgresql')) return false;
  const versions = readdirSync('/etc/postgresql');
  for (const version of versions) {
    spawnSync('pg_ctlcluster', ['--skip-systemctl-redirect', version, 'main', 'start'], { stdio: 'inherit' });
  }
  return waitFor(() => tcpReachable(host, port), 30_000);
}

/** Starts a data-less Redis on 127.0.0.1:6379 as a daemon (for test machines); true on success. */
export async function startRedisDaemon() {
  if (!commandExists('redis-server')) return false;
  spawnSync('redis-server', ['--daemonize', 'yes', '--bind', '127.0.0.1', '--port', '6379', '--save', '', '--appendonly', 'no'], {
    stdio: 'inherit',
  });
  return waitFor(() => redisAnswers('redis://127.0.0.1:6379'), 15_000);
}

/**
 * Starts redis-server from PATH as a child on a free port, keeping nothing on disk; returns
 * { url, stop } or null when there is no redis-server.
 */
export async function startRedisChild({ onLog = () => {} } = {}) {
  if (!commandExists('redis-server')) return null;
  const dir = join(ROOT, '.keyflow', 'redis');
  mkdirSync(dir, { recursive: true });
  const port = await freePort();
  const child = spawn('redis-server', ['--bind', '127.0.0.1', '--port', String(port), '--save', '', '--appendonly', 'no', '--dir', dir], {
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  for (const stream of [child.stdout, child.stderr]) {
    stream.on('data', (chunk) => {
      for (const line of chunk.toString().split('\n')) if (line.trim()) onLog(line);
    });
  }
  const exited = new Promise((resolve) => child.once('exit', resolve));
  const url = `redis://127.0.0.1:${port}`;
  if (!(await waitFor(() => redisAnswers(url), 15_000))) {
    child.kill('SIGKILL');
    throw new Error(`redis-server did not answer on port ${port}`);
  }
  return {
    url,
    pid: child.pid,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** True when `docker compose` can reach a Docker engine. */
export function dockerWorks() {
  return (
    commandExists('docker') &&
    spawnSync('docker', ['compose', 'version'], { stdio: 'ignore' }).status === 0 &&
    spawnSync('docker', ['info'], { stdio: 'ignore', timeout: 15_000 }).status === 0
  );
}

/** `docker compose up -d redis`, waiting until it answers on 127.0.0.1:6379. */
export async function startDockerRedis() {
  // Compose reads the whole file, whose control plane requires KEYFLOW_AUTH_SECRET: Redis alone does not need it.
  const env = { ...process.env, KEYFLOW_AUTH_SECRET: process.env.KEYFLOW_AUTH_SECRET || 'unused-when-only-redis-is-started-0000' };
  const up = spawnSync('docker', ['compose', 'up', '-d', 'redis'], { cwd: ROOT, stdio: 'inherit', env });
  if (up.status !== 0) return null;
  // The password docker-compose.yml gives Redis.
  const url = `redis://:${encodeURIComponent(process.env.KEYFLOW_REDIS_PASSWORD || 'keyflow-redis-local')}@127.0.0.1:6379`;
  if (!(await waitFor(() => redisAnswers(url), 60_000))) return null;
  return {
    url,
    async stop() {
      spawnSync('docker', ['compose', 'stop', 'redis'], { cwd: ROOT, stdio: 'inherit', env });
    },
  };
}

export const REDIS_HELP = `Keyflow needs Redis, and none was found. Provide one of these:
  1. REDIS_URL=redis://host:port pointing at a running Redis
  2. a Redis answering on 127.0.0.1:6379
  3. redis-server on your PATH (Debian/Ubuntu: apt-get install redis-server; macOS: brew install redis)
  4. Docker with Compose, so that \`docker compose up -d redis\` can run`;

export const EMBEDDED_PG_PORT = 54329;
const EMBEDDED_PG_PASSWORD = 'keyflow';

/**
 * Starts the embedded Postgres (data in .keyflow/pg), or reuses it when it is already running;
 * returns { serverUrl, stop } where serverUrl names the `postgres` database.
 */
export async function startEmbeddedPostgres({ onLog = () => {} } = {}) {
  const dataDir = join(ROOT, '.keyflow', 'pg');
  const serverUrl = `postgresql://postgres:${EMBEDDED_PG_PASSWORD}@127.0.0.1:${EMBEDDED_PG_PORT}/postgres`;

  if (await tcpReachable('127.0.0.1', EMBEDDED_PG_PORT)) {
    const pidFile = join(dataDir, 'postmaster.pid');
    if (!existsSync(pidFile)) {
      throw new Error(
        `Port ${EMBEDDED_PG_PORT} is taken by something other than Keyflow's embedded Postgres. ` +
          'Free it, or set DATABASE_URL to a Postgres you want to use.',
      );
    }
    const pid = Number(readFileSync(pidFile, 'utf8').split('\n')[0]);
    onLog(`embedded Postgres is already running (pid ${pid}): using it`);
    return { serverUrl, reused: true, async stop() {} };
  }

  // Its own process group, so that Ctrl-C reaches Postgres only after the apps using it stopped.
  const child = spawn(
    process.execPath,
    [join(ROOT, 'scripts', 'lib', 'embedded-postgres.mjs'), dataDir, String(EMBEDDED_PG_PORT), EMBEDDED_PG_PASSWORD],
    { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe', 'ipc'], detached: true },
  );
  for (const stream of [child.stdout, child.stderr]) {
    stream.on('data', (chunk) => {
      for (const line of chunk.toString().split('\n')) if (line.trim()) onLog(line);
    });
  }
  const exited = new Promise((resolve) => child.once('exit', resolve));
  const ready = await new Promise((resolve) => {
    child.once('message', (message) => resolve(message));
    child.once('exit', (code) => resolve({ error: `embedded Postgres exited (code ${code}) before it was ready` }));
  });
  if (ready.error) throw new Error(ready.error);
  return {
    serverUrl,
    reused: false,
    pid: child.pid,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => killGroup(child.pid, 'SIGKILL'), 20_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** Signals a whole process group, ignoring one that is gone already. */
export function killGroup(pid, signal) {
  try {
    process.kill(-pid, signal);
  } catch {
    // already gone
  }
}

/**
 * The brokers the connector tests publish to and read from: NATS with JetStream on 4222 and Mosquitto (MQTT) on
 * 1883. Each is started from PATH when it does not answer (nats-server with JetStream, keeping its store under
 * .keyflow/nats; mosquitto as a daemon), and installed first from Debian's packages when `install` allows it (CI).
 * Returns what is still missing, for the caller to say.
 */
export async function ensureBrokers({ install = false, log = () => {} } = {}) {
  const brokers = [
    {
      name: 'NATS (JetStream)',
      port: 4222,
      command: 'nats-server',
      pkg: 'nats-server',
      start: () => {
        const dir = join(ROOT, '.keyflow', 'nats');
        mkdirSync(dir, { recursive: true });
        spawn('nats-server', ['-js', '-a', '127.0.0.1', '-p', '4222', '-sd', dir], { stdio: 'ignore', detached: true }).unref();
      },
    },
    {
      name: 'Mosquitto (MQTT)',
      port: 1883,
      command: 'mosquitto',
      pkg: 'mosquitto',
      start: () => spawnSync('mosquitto', ['-d', '-p', '1883'], { stdio: 'ignore' }),
    },
  ];
  const missing = [];
  for (const b of brokers) {
    if (await tcpReachable('127.0.0.1', b.port)) continue;
    if (!commandExists(b.command) && install) {
      log(`no ${b.name} on 127.0.0.1:${b.port} and no ${b.command}: installing ${b.pkg}`);
      spawnSync('sh', ['-c', `apt-get install -y ${b.pkg} || (apt-get update && apt-get install -y ${b.pkg})`], { stdio: 'inherit' });
    }
    if (commandExists(b.command)) {
      log(`no ${b.name} on 127.0.0.1:${b.port}: starting ${b.command}`);
      b.start();
      if (await waitFor(() => tcpReachable('127.0.0.1', b.port), 15_000)) continue;
    }
    missing.push(`${b.name} on 127.0.0.1:${b.port} (install ${b.pkg}, or run it with docker compose up -d)`);
  }
  return missing;
}
