// `npm run up`: installs what is missing, finds or starts Postgres and Redis, migrates, starts the
// control plane, two workers and the dashboard (built when its sources changed), and deploys the demo
// pipeline. Ctrl-C stops all it started.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { ensureDependencies, packageScript, ROOT } from './lib/deps.mjs';
import { fileLogger, LOG_DIR, logger, startService } from './lib/processes.mjs';
import { redisAnswers } from './lib/redis.mjs';
import {
  commandExists,
  dockerWorks,
  hostPort,
  REDIS_HELP,
  sleep,
  startDockerRedis,
  startEmbeddedPostgres,
  startRedisChild,
  tcpReachable,
} from './lib/services.mjs';
import { ensureWebBuild, webStartCommand } from './lib/web.mjs';

const CONTROL_PORT = Number(process.env.CONTROL_PORT || 4000);
const API = `http://127.0.0.1:${CONTROL_PORT}/api`;
const WEB_HOST = process.env.WEB_HOST || '127.0.0.1';
const WEB_PORT = Number(process.env.WEB_PORT || 3000);
const DASHBOARD = `http://${WEB_HOST}:${WEB_PORT}`;
const PREFIX = process.env.KEYFLOW_PREFIX || 'kf';
const HEALTH_DEADLINE_MS = 120_000;

const say = logger('up');
const stops = []; // undone last-first: the apps before Redis and Postgres
const services = [];
let stopping = false;

async function shutdown(code) {
  if (stopping) return;
  stopping = true;
  say('stopping…');
  for (const stop of stops.reverse()) {
    try {
      await stop();
    } catch (error) {
      say(`while stopping: ${error.message}`);
    }
  }
  say('stopped.');
  process.exit(code);
}

function fail(message, code = 1) {
  for (const line of message.split('\n')) say(line);
  return shutdown(code);
}

for (const [signal, code] of [
  ['SIGINT', 130],
  ['SIGTERM', 143],
  ['SIGHUP', 129],
]) {
  process.on(signal, () => {
    if (stopping) {
      say('stopping at once');
      for (const service of services) service.stop(0);
      return;
    }
    void shutdown(code);
  });
}

async function findPostgres() {
  if (process.env.DATABASE_URL) {
    const { host, port } = hostPort(process.env.DATABASE_URL, 5432);
    if (!(await tcpReachable(host, port))) {
      throw new Error(`DATABASE_URL points at ${host}:${port}, where no Postgres answers.`);
    }
    say(`Postgres: DATABASE_URL (${host}:${port})`);
    return process.env.DATABASE_URL;
  }
  const pg = await startEmbeddedPostgres({ onLog: fileLogger('postgres', (line) => /ERROR|FATAL|PANIC|initialising|already running/.test(line)) });
  stops.push(() => pg.stop());
  const url = new URL(pg.serverUrl);
  url.pathname = '/keyflow';
  say(`Postgres: embedded, data in .keyflow/pg, port ${url.port}`);
  return url.toString();
}

async function findRedis() {
  if (process.env.REDIS_URL) {
    if (!(await redisAnswers(process.env.REDIS_URL))) {
      throw new Error(`REDIS_URL is ${process.env.REDIS_URL}, but no Redis answers there.`);
    }
    say('Redis: REDIS_URL');
    return process.env.REDIS_URL;
  }
  if (await redisAnswers('redis://127.0.0.1:6379')) {
    say('Redis: the one on 127.0.0.1:6379');
    return 'redis://127.0.0.1:6379';
  }
  if (commandExists('redis-server')) {
    const redis = await startRedisChild({ onLog: fileLogger('redis', (line) => /error|fatal/i.test(line)) });
    stops.push(() => redis.stop());
    say(`Redis: started redis-server on ${redis.url} (keeps nothing on disk)`);
    return redis.url;
  }
  if (dockerWorks()) {
    say('Redis: starting it with docker compose');
    const redis = await startDockerRedis();
    if (redis) {
      stops.push(() => redis.stop());
      return redis.url;
    }
  }
  throw new Error(REDIS_HELP);
}

/** The URL sinks write through: KEYFLOW_SINK_DATABASE_URL, else a restricted role made now; undefined: DATABASE_URL's. */
function sinkDatabaseUrl(databaseUrl) {
  if (process.env.KEYFLOW_SINK_DATABASE_URL) {
    say('Sinks: KEYFLOW_SINK_DATABASE_URL');
    return Promise.resolve(process.env.KEYFLOW_SINK_DATABASE_URL);
  }
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ['--import', 'tsx', 'scripts/sink-role.ts', '--print-url'],
      { cwd: ROOT, env: { ...process.env, DATABASE_URL: databaseUrl } },
      (error, stdout, stderr) => {
        if (!error) {
          say('Sinks: write as the restricted role keyflow_sink, in schema keyflow_sinks');
          return resolve(stdout.trim());
        }
        say(`warning: could not give sinks a restricted role (${(stderr || error.message).trim()})`);
        say("warning: sinks write with DATABASE_URL's credentials, so a pipeline can reach Keyflow's own tables");
        resolve(undefined);
      },
    );
  });
}

function demoGraph() {
  return new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      ['--import', 'tsx', 'scripts/lib/demo-graph.ts'],
      { cwd: ROOT, maxBuffer: 16 * 1024 * 1024 },
      (error, stdout, stderr) =>
        error ? reject(new Error(`could not load the demo pipeline: ${stderr || error.message}`)) : resolve(JSON.parse(stdout)),
    );
  });
}

const STATE_DIR = join(ROOT, '.keyflow');
/** This checkout's operator API key (for `npm run watch` and curl), made on the first run. */
const KEY_FILE = join(STATE_DIR, 'api-key');

/** Reads a secret kept in .keyflow (readable by this user only), making it on first use. */
function keptSecret(name, make) {
  const file = join(STATE_DIR, name);
  if (existsSync(file)) return readFileSync(file, 'utf8').trim();
  mkdirSync(STATE_DIR, { recursive: true });
  const value = make();
  writeFileSync(file, `${value}\n`, { mode: 0o600 });
  return value;
}

/** The first admin (made now when none exists) and this checkout's API key: see apps/control/src/firstRun.ts. */
function firstRun(env) {
  return new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      ['--import', 'tsx', 'src/firstRun.ts'],
      { cwd: join(ROOT, 'apps/control'), env: { ...process.env, ...env, KEYFLOW_KEY_FILE: KEY_FILE } },
      (error, stdout, stderr) => {
        if (error) return reject(new Error(`could not set up the first admin: ${(stderr || error.message).trim()}`));
        const made = JSON.parse(stdout.trim().split('\n').at(-1));
        if (made.apiKey) {
          writeFileSync(KEY_FILE, `${made.apiKey}\n`, { mode: 0o600 });
          chmodSync(KEY_FILE, 0o600);
        }
        resolve(made);
      },
    );
  });
}

async function api(method, path, body) {
  const response = await fetch(`${API}${path}`, {
    method,
    headers: {
      authorization: `Bearer ${readFileSync(KEY_FILE, 'utf8').trim()}`,
      ...(method !== 'GET' && { 'content-type': 'application/json' }),
    },
    body: method !== 'GET' ? JSON.stringify(body ?? {}) : undefined,
  });
  const text = await response.text();
  if (!response.ok) throw new Error(`${method} /api${path} answered ${response.status}: ${text}`);
  return text ? JSON.parse(text) : null;
}

/** Waits until the dashboard serves its pages and reaches the API through its proxy. */
async function waitForDashboard(web) {
  const deadline = Date.now() + HEALTH_DEADLINE_MS;
  while (Date.now() < deadline) {
    if (!web.running) return false;
    try {
      const response = await fetch(`${DASHBOARD}/api/health`, { signal: AbortSignal.timeout(2000) });
      if (response.status === 200) return true;
    } catch {
      // not listening yet
    }
    await sleep(500);
  }
  return false;
}

async function waitForHealth(control) {
  const deadline = Date.now() + HEALTH_DEADLINE_MS;
  while (Date.now() < deadline) {
    if (!control.running) return false;
    try {
      const response = await fetch(`${API}/health`, { signal: AbortSignal.timeout(2000) });
      if (response.status === 200) return true;
    } catch {
      // not listening yet
    }
    await sleep(500);
  }
  return false;
}

function lastLines(service) {
  return [`last lines of ${service.name}:`, ...service.lastLines(15).map((line) => `  ${line}`)].join('\n');
}

async function deployDemo() {
  const graph = await demoGraph();
  const pipelines = await api('GET', '/pipelines');
  let demo = pipelines.find((p) => p.name === 'demo');
  if (!demo) {
    demo = await api('POST', '/pipelines', { name: 'demo', graph });
    say(`created pipeline demo (${demo.id})`);
  }
  const jobs = await api('GET', `/jobs?pipelineId=${demo.id}`);
  // A job that has not ended (the API's endedAt is set with every terminal state), other than one stopping.
  const active = jobs.find((job) => job.endedAt === null && job.state !== 'STOPPING');
  if (active) {
    say(`the demo job is already ${active.state}`);
    return active;
  }
  const job = await api('POST', '/jobs', { pipelineId: demo.id });
  say(`deployed the demo job (${job.id})`);
  return job;
}

async function main() {
  await ensureDependencies({ log: say });
  if (await tcpReachable(WEB_HOST, WEB_PORT)) {
    throw new Error(`Port ${WEB_PORT} is in use: is Keyflow already running? Stop it, or set WEB_PORT.`);
  }
  // The dashboard builds (when its sources changed) while the databases and the engine start.
  const webLog = fileLogger('web-build', (line) => /error|failed|warn/i.test(line));
  const webBuild = ensureWebBuild({ log: say, onOutput: webLog }).then(
    () => null,
    (error) => error,
  );
  const databaseUrl = await findPostgres();
  const redisUrl = await findRedis();

  const migration = startService('migrate', process.execPath, ['--import', 'tsx', 'scripts/migrate.ts'], {
    env: { DATABASE_URL: databaseUrl },
  });
  services.push(migration);
  const migrated = await migration.exited;
  services.pop();
  if (migrated.code !== 0) throw new Error('the migration failed (see above)');
  const sinkUrl = await sinkDatabaseUrl(databaseUrl);

  if (await tcpReachable('127.0.0.1', CONTROL_PORT)) {
    throw new Error(`Port ${CONTROL_PORT} is in use: is Keyflow already running? Stop it, or set CONTROL_PORT.`);
  }

  const env = {
    DATABASE_URL: databaseUrl,
    REDIS_URL: redisUrl,
    KEYFLOW_PREFIX: PREFIX,
    ...(sinkUrl && { KEYFLOW_SINK_DATABASE_URL: sinkUrl }),
    // Signs session cookies; kept in .keyflow so that sign-ins outlive a restart.
    KEYFLOW_AUTH_SECRET: process.env.KEYFLOW_AUTH_SECRET || keptSecret('auth-secret', () => randomBytes(32).toString('base64url')),
    // Seals connections' passwords and tokens in Postgres; the control plane and the workers need the same one, and
    // it must outlive a restart (secrets sealed with a lost key are lost).
    KEYFLOW_SECRET_KEY: process.env.KEYFLOW_SECRET_KEY || keptSecret('secret-key', () => randomBytes(32).toString('base64')),
    KEYFLOW_DASHBOARD_URL: process.env.KEYFLOW_DASHBOARD_URL || DASHBOARD,
    // User operators: the examples unless told otherwise; paths absolute, for the control plane and the workers
    // run in their own folders.
    KEYFLOW_OPERATORS: (process.env.KEYFLOW_OPERATORS ?? 'examples/operators')
      .split(',')
      .map((e) => e.trim())
      .filter(Boolean)
      .map((e) => (!e.startsWith('@') && (e.startsWith('.') || e.includes('/')) ? resolve(ROOT, e) : e))
      .join(','),
  };
  const accounts = await firstRun(env);
  const start = (name, dir, extraEnv) => {
    const script = packageScript(dir, 'start');
    return startService(name, script.command, script.args, {
      cwd: script.cwd,
      env: { ...script.env, ...env, ...extraEnv },
    });
  };
  const workers = ['worker-1', 'worker-2'].map((name) => start(name, 'apps/worker', { WORKER_SLOTS: '4', WORKER_NAME: name }));
  const control = start('control', 'apps/control', { CONTROL_PORT: String(CONTROL_PORT) });
  services.push(control, ...workers);
  stops.push(() => Promise.all(workers.map((w) => w.stop())));
  stops.push(() => control.stop());

  control.exited.then(({ code, signal }) => {
    if (!stopping) void fail(`control exited (${signal ?? `code ${code}`}).\n${lastLines(control)}`);
  });
  for (const worker of workers) {
    worker.exited.then(({ code, signal }) => {
      if (!stopping) say(`${worker.name} exited (${signal ?? `code ${code}`}); the others keep running.`);
    });
  }

  if (!(await waitForHealth(control))) {
    if (stopping) return;
    const why = control.running
      ? `GET ${API}/health did not answer 200 within ${HEALTH_DEADLINE_MS / 1000}s.`
      : 'control exited before it was healthy.';
    return fail([why, ...services.map(lastLines)].join('\n'));
  }
  say(`control is healthy at ${API}`);

  let job = null;
  try {
    job = await deployDemo();
  } catch (error) {
    say(`could not deploy the demo: ${error.message}`);
  }

  let dashboard = false;
  const buildError = await webBuild;
  if (buildError) say(`the dashboard could not be built, so it is not running: ${buildError.message}`);
  else {
    const cmd = webStartCommand({ port: WEB_PORT, host: WEB_HOST, controlUrl: `http://127.0.0.1:${CONTROL_PORT}` });
    const web = startService('web', cmd.command, cmd.args, { cwd: cmd.cwd, env: cmd.env });
    services.push(web);
    stops.push(() => web.stop());
    web.exited.then(({ code, signal }) => {
      if (!stopping) say(`the dashboard exited (${signal ?? `code ${code}`}); the engine keeps running.`);
    });
    dashboard = await waitForDashboard(web);
    if (!dashboard && !stopping) say(`the dashboard did not answer at ${DASHBOARD}.\n${lastLines(web)}`);
  }
  if (stopping) return;

  const logs = relative(process.cwd(), LOG_DIR) || '.';
  const lines = [
    '',
    dashboard ? `Dashboard: ${DASHBOARD}` : 'Dashboard: not running (see above)',
    ...(accounts.admin.created
      ? accounts.admin.generated
        ? [
            `  Sign in:   ${accounts.admin.email}  password ${accounts.admin.password}`,
            '             (shown this once: write it down, or change it under Users)',
          ]
        : [`  Sign in:   ${accounts.admin.email}  with KEYFLOW_ADMIN_PASSWORD`]
      : ['  Sign in:   with the admin account made on the first run (or a user an admin made)']),
    `  API:       ${API}  (key for scripts: ${relative(process.cwd(), KEY_FILE)})`,
    ...(job
      ? [
          `  Demo job:  ${job.id}${dashboard ? `  ${DASHBOARD}/jobs/${job.id}` : ''}`,
          `  Watch it:  curl -H "Authorization: Bearer $(cat ${relative(process.cwd(), KEY_FILE)})" ${API}/jobs/${job.id}`,
          `             npm run watch -- ${job.id}`,
        ]
      : ['  Demo job:  not deployed (see above)']),
    `  Logs:      ${logs}/control.log, ${logs}/worker-1.log, ${logs}/worker-2.log, ${logs}/web.log`,
    'Keyflow is running. Press Ctrl-C to stop everything.',
    '',
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
}

main().catch((error) => fail(error.message));
