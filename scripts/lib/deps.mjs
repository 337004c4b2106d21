// Installs the workspace's dependencies when they are missing or older than the lockfile and
// package.json files. Node built-ins only: this runs before anything is installed.
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { delimiter, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const PNPM_VERSION = '10.34.8';
const STAMP = join(ROOT, 'node_modules', '.keyflow-installed');

/** The command that runs pnpm: a pnpm 10 on PATH, else the pinned one through npx. */
function pnpmCommand() {
  const onPath = spawnSync('pnpm', ['--version'], { encoding: 'utf8', stdio: 'pipe' });
  if (onPath.status === 0 && onPath.stdout.trim().startsWith('10.')) return ['pnpm'];
  return ['npx', '-y', `pnpm@${PNPM_VERSION}`];
}

/** Runs a command with inherited stdio; rejects when it fails. */
export function run(command, args, options = {}) {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(command, args, { cwd: ROOT, stdio: 'inherit', ...options });
    child.on('error', reject);
    child.on('exit', (code, signal) =>
      code === 0 ? resolvePromise() : reject(new Error(`${[command, ...args].join(' ')} failed (${signal ?? `exit code ${code}`})`)),
    );
  });
}

/** Everything that decides what `pnpm install` produces. */
function installInputs() {
  const files = ['package.json', 'pnpm-lock.yaml', 'pnpm-workspace.yaml'];
  for (const group of ['apps', 'packages']) {
    const dir = join(ROOT, group);
    if (!existsSync(dir)) continue;
    for (const name of readdirSync(dir).sort()) files.push(join(group, name, 'package.json'));
  }
  files.push(join('e2e', 'package.json'));
  const hash = createHash('sha256');
  for (const file of files) {
    const path = join(ROOT, file);
    if (existsSync(path)) hash.update(file).update('\0').update(readFileSync(path)).update('\0');
  }
  return hash.digest('hex');
}

/** Runs `pnpm install --frozen-lockfile` unless node_modules matches the current inputs. */
export async function ensureDependencies({ log = console.log } = {}) {
  const inputs = installInputs();
  const current = existsSync(STAMP) && readFileSync(STAMP, 'utf8').trim() === inputs;
  if (!current) {
    log(existsSync(join(ROOT, 'node_modules')) ? 'Dependencies changed: installing.' : 'Installing dependencies.');
    const [command, ...args] = pnpmCommand();
    await run(command, [...args, 'install', '--frozen-lockfile']);
    writeFileSync(STAMP, `${inputs}\n`);
  }
  // The generated Prisma client is gitignored; install makes it, but it may have been deleted since.
  if (!existsSync(join(ROOT, 'packages', 'db', 'src', 'generated', 'client.ts'))) {
    await run(process.execPath, [join(ROOT, 'packages', 'db', 'scripts', 'generate.mjs')]);
  }
}

/**
 * The command for a package.json script, run as `pnpm --filter <package> <script>` would run it
 * (in the package's folder, its and the root's node_modules/.bin on PATH), without going
 * through npx, which can stall for minutes when the registry is slow or out of reach.
 */
export function packageScript(packageDir, script) {
  const dir = resolve(ROOT, packageDir);
  const body = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')).scripts?.[script];
  if (!body) throw new Error(`${packageDir}/package.json has no "${script}" script`);
  const PATH = [join(dir, 'node_modules', '.bin'), join(ROOT, 'node_modules', '.bin'), process.env.PATH].join(delimiter);
  return { command: 'sh', args: ['-c', body], cwd: dir, env: { PATH } };
}
