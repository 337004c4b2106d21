// Long-running children for the launcher: each in its own process group, its output prefixed
// with its name on the terminal and copied to .keyflow/logs/<name>.log.
import { spawn } from 'node:child_process';
import { createWriteStream, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT } from './deps.mjs';
import { killGroup, sleep } from './services.mjs';

export const LOG_DIR = join(ROOT, '.keyflow', 'logs');
const COLORS = [36, 35, 33, 32, 34, 31];
const useColor = process.stdout.isTTY && !process.env.NO_COLOR;
let nextColor = 0;

/** A prefixing logger for the launcher's own lines and for services that are not processes. */
export function logger(name) {
  const color = COLORS[nextColor++ % COLORS.length];
  const tag = useColor ? `\x1b[${color}m${name.padEnd(9)}\x1b[0m|` : `${name.padEnd(9)}|`;
  return (line) => process.stdout.write(`${tag} ${line}\n`);
}

/**
 * A logger that writes every line to .keyflow/logs/<name>.log and shows on the terminal only the
 * lines `show` picks (for chatty servers such as Postgres).
 */
export function fileLogger(name, show = () => true) {
  mkdirSync(LOG_DIR, { recursive: true });
  const file = createWriteStream(join(LOG_DIR, `${name}.log`), { flags: 'a' });
  const print = logger(name);
  return (line) => {
    file.write(`${line}\n`);
    if (show(line)) print(line);
  };
}

/**
 * Starts `command args` as service `name`. Returns { name, pid, exited, lastLines(), stop() }:
 * `exited` resolves with { code, signal } when it ends.
 */
export function startService(name, command, args, { env = {}, cwd = ROOT } = {}) {
  mkdirSync(LOG_DIR, { recursive: true });
  const file = createWriteStream(join(LOG_DIR, `${name}.log`), { flags: 'a' });
  const print = logger(name);
  const recent = [];
  const child = spawn(command, args, {
    cwd,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });

  for (const stream of [child.stdout, child.stderr]) {
    let partial = '';
    stream.on('data', (chunk) => {
      const lines = (partial + chunk.toString()).split('\n');
      partial = lines.pop();
      for (const line of lines) emit(line);
    });
    stream.on('end', () => partial && emit(partial));
  }
  function emit(line) {
    file.write(`${line}\n`);
    recent.push(line);
    if (recent.length > 40) recent.shift();
    print(line);
  }

  const exited = new Promise((resolve) => {
    child.once('error', (error) => {
      emit(`could not start: ${error.message}`);
      resolve({ code: null, signal: null, error });
    });
    child.once('exit', (code, signal) => resolve({ code, signal }));
  }).finally(() => file.end());

  return {
    name,
    pid: child.pid,
    exited,
    get running() {
      return child.exitCode === null && child.signalCode === null;
    },
    lastLines: (n = 20) => recent.slice(-n),
    /** SIGTERM to the whole group, then waits for all of it to go; SIGKILL after `graceMs`. */
    async stop(graceMs = 10_000) {
      if (!child.pid) return;
      killGroup(child.pid, 'SIGTERM');
      // The leader (npx or pnpm) may exit at once while the app it runs is still closing.
      const deadline = Date.now() + graceMs;
      while (groupAlive(child.pid) && Date.now() < deadline) await sleep(100);
      if (groupAlive(child.pid)) {
        print(`still running after ${graceMs / 1000}s: killing it`);
        killGroup(child.pid, 'SIGKILL');
      }
      await exited;
    },
  };
}

function groupAlive(pgid) {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch {
    return false;
  }
}
