// The dashboard (apps/web): built with `next build` only when its inputs changed since the last build, and
// served with `next start`. Node built-ins only, like the rest of the launcher.
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { ROOT } from './deps.mjs';

export const WEB_DIR = join(ROOT, 'apps', 'web');
/** The browser tests' own build folder (apps/web/.next-e2e), so a running `npm run up` keeps its `.next`. */
export const E2E_DIST_DIR = '.next-e2e';
const NEXT = join(WEB_DIR, 'node_modules', '.bin', 'next');
/** What a build depends on: the app, the packages it bundles, and the lockfile. */
const INPUTS = ['apps/web', 'packages/api/src', 'packages/core/src', 'pnpm-lock.yaml'];
const SKIP = new Set(['node_modules', 'next-env.d.ts', 'tsconfig.tsbuildinfo']);

function listFiles(path, out = []) {
  const name = path.split('/').pop();
  if (SKIP.has(name) || name.startsWith('.next') || /\.test\.tsx?$/.test(name)) return out;
  if (statSync(path).isDirectory()) for (const entry of readdirSync(path).sort()) listFiles(join(path, entry), out);
  else out.push(path);
  return out;
}

function inputsHash() {
  const hash = createHash('sha256');
  for (const input of INPUTS) {
    const path = join(ROOT, input);
    if (!existsSync(path)) continue;
    for (const file of listFiles(path)) hash.update(relative(ROOT, file)).update('\0').update(readFileSync(file)).update('\0');
  }
  return hash.digest('hex');
}

/** The environment of `next build` and `next start`: the build folder (`.next` unless told) and no telemetry. */
export function webEnv(distDir = '.next') {
  return { NEXT_TELEMETRY_DISABLED: '1', KEYFLOW_WEB_DIST: distDir };
}

/**
 * Builds the dashboard into `distDir` (relative to apps/web) unless a build of the same inputs is there.
 * Resolves true when it built. `log` gets the launcher's lines; build output goes to `onOutput`.
 */
export async function ensureWebBuild({ distDir = '.next', log = () => {}, onOutput = (line) => process.stdout.write(`${line}\n`) } = {}) {
  const stamp = join(WEB_DIR, distDir, 'keyflow-inputs');
  const inputs = inputsHash();
  if (existsSync(join(WEB_DIR, distDir, 'BUILD_ID')) && existsSync(stamp) && readFileSync(stamp, 'utf8').trim() === inputs) return false;
  log('building the dashboard (next build)…');
  const started = Date.now();
  await new Promise((resolve, reject) => {
    const child = spawn(NEXT, ['build'], { cwd: WEB_DIR, env: { ...process.env, ...webEnv(distDir) }, stdio: ['ignore', 'pipe', 'pipe'] });
    const recent = [];
    for (const stream of [child.stdout, child.stderr])
      stream.on('data', (chunk) => {
        for (const line of chunk.toString().split('\n').filter(Boolean)) {
          onOutput(line);
          recent.push(line);
          if (recent.length > 40) recent.shift();
        }
      });
    child.on('error', reject);
    child.on('exit', (code, signal) =>
      code === 0 ? resolve() : reject(new Error(`next build failed (${signal ?? `exit code ${code}`}):\n${recent.join('\n')}`)),
    );
  });
  writeFileSync(stamp, `${inputs}\n`);
  log(`built the dashboard in ${Math.round((Date.now() - started) / 1000)} s`);
  return true;
}

/** The command that serves a build: `next start` on `host:port`, proxying /api and /socket.io to `controlUrl`. */
export function webStartCommand({ port, host = '127.0.0.1', controlUrl, distDir = '.next' }) {
  return {
    command: NEXT,
    args: ['start', '--hostname', host, '--port', String(port)],
    cwd: WEB_DIR,
    env: { ...webEnv(distDir), CONTROL_URL: controlUrl },
  };
}
