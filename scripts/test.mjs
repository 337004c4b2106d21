// `npm test`: installs what is missing, makes sure Postgres, Redis, NATS and Mosquitto answer, runs the unit and
// integration tests (vitest), then the browser tests (Playwright), and ends with one line:
// `Tests: N passed, N failed`. Exits non-zero on any failure. Arguments go to vitest as filters
// (`npm test -- packages/db`), and then Playwright is left out.
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join, relative } from 'node:path';
import { ensureChromium } from './lib/chromium.mjs';
import { ensureDependencies, ROOT } from './lib/deps.mjs';
import { redisAnswers } from './lib/redis.mjs';
import { E2E_DIST_DIR, ensureWebBuild } from './lib/web.mjs';
import {
  dockerWorks,
  ensureBrokers,
  hostPort,
  REDIS_HELP,
  startDockerRedis,
  startEmbeddedPostgres,
  startRedisDaemon,
  startSystemPostgres,
  tcpReachable,
} from './lib/services.mjs';

const RESULTS_DIR = join(ROOT, '.keyflow', 'test-results');
const DEFAULT_POSTGRES = 'postgresql://postgres@127.0.0.1:5432/postgres';
const DEFAULT_REDIS = 'redis://127.0.0.1:6379';

const filters = process.argv.slice(2);
const say = (line) => console.log(`[test] ${line}`);
const totals = { passed: 0, failed: 0, skipped: 0 };
const stops = [];
let interrupted = false;
// Ctrl-C reaches the test runner too (same process group); let it finish, then clean up.
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => (interrupted = true));

/** The Postgres server the tests create their databases on (TEST_DATABASE_URL). */
async function ensurePostgres() {
  const url = process.env.TEST_DATABASE_URL || DEFAULT_POSTGRES;
  const { host, port } = hostPort(url, 5432);
  if (await tcpReachable(host, port)) return url;
  if (process.env.TEST_DATABASE_URL) throw new Error(`TEST_DATABASE_URL points at ${host}:${port}, where no Postgres answers.`);

  say(`no Postgres on ${host}:${port}: starting the machine's cluster`);
  if (await startSystemPostgres(host, port)) return url;

  say('no Postgres cluster on this machine: starting the embedded one (data in .keyflow/pg)');
  const pg = await startEmbeddedPostgres({ onLog: (line) => /ERROR|FATAL|PANIC/.test(line) && say(`postgres: ${line}`) });
  stops.push(() => pg.stop());
  return pg.serverUrl;
}

async function ensureRedis() {
  const url = process.env.REDIS_URL || DEFAULT_REDIS;
  if (await redisAnswers(url)) return url;
  if (process.env.REDIS_URL) throw new Error(`REDIS_URL is ${url}, but no Redis answers there.`);

  say('no Redis on 127.0.0.1:6379: starting one');
  if (await startRedisDaemon()) return url;
  if (dockerWorks()) {
    const redis = await startDockerRedis();
    if (redis) {
      stops.push(() => redis.stop());
      return redis.url;
    }
  }
  throw new Error(REDIS_HELP);
}

function runCommand(command, args, env, cwd = ROOT) {
  return new Promise((resolve) => {
    const child = spawn(command, args, { cwd, stdio: 'inherit', env: { ...process.env, ...env } });
    child.on('error', (error) => {
      say(`could not run ${command}: ${error.message}`);
      resolve(1);
    });
    child.on('exit', (code, signal) => resolve(code ?? (signal ? 1 : 0)));
  });
}

function readJson(file) {
  try {
    return JSON.parse(readFileSync(file, 'utf8'));
  } catch {
    return null;
  }
}

// ---- Format and lint (Prettier, ESLint) ---------------------------------------------------------
// Each tool that finds something counts as one failure; the tests run all the same, so one run shows everything.
async function runLint() {
  for (const [tool, args, fix] of [
    ['prettier', ['--check', '.'], 'npm run format'],
    ['eslint', ['.'], 'npm run lint -- --fix, then fix the rest by hand'],
  ]) {
    say(`${tool} ${args.join(' ')}`);
    const code = await runCommand(join(ROOT, 'node_modules', '.bin', tool), args, {});
    if (code !== 0) {
      say(`${tool} found problems (above): ${fix}`);
      totals.failed += 1;
    }
  }
}

// ---- Unit and integration tests (vitest) ------------------------------------------------------
async function runVitest(env) {
  const report = join(RESULTS_DIR, 'vitest.json');
  rmSync(report, { force: true });
  const code = await runCommand(
    join(ROOT, 'node_modules', '.bin', 'vitest'),
    ['run', '--reporter=default', '--reporter=json', `--outputFile.json=${report}`, ...filters],
    env,
  );
  const result = readJson(report);
  if (!result) {
    say(`vitest wrote no report (exit code ${code})`);
    totals.failed += 1;
    return;
  }
  totals.passed += result.numPassedTests;
  totals.failed += result.numFailedTests;
  totals.skipped += result.numPendingTests + result.numTodoTests;
  // A file that fails to load counts no failed test, yet fails the run.
  const brokenFiles = result.testResults.filter((file) => file.status === 'failed' && !file.assertionResults.some((a) => a.status === 'failed'));
  for (const file of brokenFiles) say(`failed to run ${relative(ROOT, file.name)}`);
  totals.failed += brokenFiles.length;
  if (code !== 0 && result.numFailedTests + brokenFiles.length === 0) {
    say(`vitest exited with code ${code} (errors outside the tests: see above)`);
    totals.failed += 1;
  }
}

// ---- Browser tests (Playwright) -----------------------------------------------------------------
// Runs once e2e/ holds Playwright tests (and its package.json); until then it is skipped. The
// tests use the system's Chromium (scripts/lib/chromium.mjs finds or installs it), passed as CHROMIUM_PATH.
function e2eTests(dir = join(ROOT, 'e2e')) {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    if (entry.name === 'node_modules' || entry.name.startsWith('.')) return [];
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return e2eTests(path);
    return /\.(spec|test)\.[cm]?[jt]sx?$/.test(entry.name) ? [path] : [];
  });
}

const browserTestsPresent = () => e2eTests().length > 0 && existsSync(join(ROOT, 'e2e', 'package.json'));

async function runPlaywright(env, chromium) {
  if (!browserTestsPresent()) {
    say('no browser tests in e2e/ yet: skipping Playwright');
    return;
  }
  const playwright = join(ROOT, 'e2e', 'node_modules', '.bin', 'playwright');
  if (!existsSync(playwright)) {
    say('e2e/ has tests, but @playwright/test is not a dependency of e2e/package.json');
    totals.failed += 1;
    return;
  }
  if (chromium.error) {
    say(chromium.error);
    totals.failed += 1;
    return;
  }
  const report = join(RESULTS_DIR, 'playwright.json');
  rmSync(report, { force: true });
  const code = await runCommand(
    playwright,
    ['test', '--reporter=list,json'],
    {
      ...env,
      CHROMIUM_PATH: chromium.path,
      PLAYWRIGHT_JSON_OUTPUT_FILE: report,
      PLAYWRIGHT_JSON_OUTPUT_NAME: report,
    },
    join(ROOT, 'e2e'),
  );
  const stats = readJson(report)?.stats;
  if (!stats) {
    say(`Playwright wrote no report (exit code ${code})`);
    totals.failed += 1;
    return;
  }
  totals.passed += stats.expected + stats.flaky;
  totals.failed += stats.unexpected;
  totals.skipped += stats.skipped;
  if (code !== 0 && stats.unexpected === 0) {
    say(`Playwright exited with code ${code}`);
    totals.failed += 1;
  }
}

async function main() {
  await ensureDependencies({ log: say });
  const env = { TEST_DATABASE_URL: await ensurePostgres(), REDIS_URL: await ensureRedis() };
  // The connector tests run against real brokers; one that cannot be started makes those tests fail, saying so.
  for (const missing of await ensureBrokers({ install: !!process.env.CI, log: say }))
    say(`missing: ${missing}; the connector tests that need it will fail`);
  mkdirSync(RESULTS_DIR, { recursive: true });
  // Found (or installed) before the long run, so that a missing browser is said at once, not after it.
  let chromium = {};
  if (filters.length === 0) {
    try {
      chromium = { path: ensureChromium({ log: say }) };
    } catch (error) {
      chromium = { error: error.message };
      say(chromium.error);
    }
  }
  if (filters.length === 0) {
    // The browser tests' dashboard build (their start's slow part) runs beside the lint, which times nothing; the
    // tests after them do. Their setup finds it built, or builds again and says why it failed.
    const webBuild = browserTestsPresent()
      ? ensureWebBuild({ distDir: E2E_DIST_DIR, log: say, onOutput: () => {} }).catch((error) => say(error.message))
      : undefined;
    await runLint();
    await webBuild;
  }
  await runVitest(env);
  if (!interrupted && filters.length === 0) await runPlaywright(env, chromium);
}

let setupFailed = false;
try {
  await main();
} catch (error) {
  console.error(`\n${error.message}\n`);
  setupFailed = true;
}
for (const stop of stops.reverse()) await stop().catch(() => {});
if (interrupted) say('interrupted');
if (totals.skipped) say(`${totals.skipped} skipped`);
if (setupFailed && totals.failed === 0) totals.failed = 1;
console.log(`Tests: ${totals.passed} passed, ${totals.failed} failed`);
process.exit(totals.failed > 0 || interrupted ? 1 : 0);
