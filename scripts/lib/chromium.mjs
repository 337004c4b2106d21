// The browser tests drive the dashboard in the system's Chromium (never a browser Playwright downloads: that
// comes from outside the npm registry). Finds it, installs it with the system's package manager when it can,
// or says in one line how to get it.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';

const CANDIDATES = ['/usr/bin/chromium', '/usr/bin/chromium-browser', '/snap/bin/chromium'];

export const CHROMIUM_HELP =
  'The browser tests need Chromium: install it with `sudo apt-get install -y chromium` (Debian; `chromium-browser` on Ubuntu), ' +
  'or point CHROMIUM_PATH at a Chromium or Chrome binary, and run `npm test` again.';

function found() {
  if (process.env.CHROMIUM_PATH) return existsSync(process.env.CHROMIUM_PATH) ? process.env.CHROMIUM_PATH : undefined;
  return CANDIDATES.find((path) => existsSync(path));
}

/** apt-get as root, or through sudo when that needs no password; undefined when neither is possible. */
function aptGet() {
  if (spawnSync('sh', ['-c', 'command -v apt-get'], { stdio: 'ignore' }).status !== 0) return undefined;
  if (process.getuid?.() === 0) return ['apt-get'];
  if (spawnSync('sudo', ['-n', 'true'], { stdio: 'ignore' }).status === 0) return ['sudo', '-n', 'apt-get'];
  return undefined;
}

/**
 * The path of a Chromium to run the browser tests with, installing Debian's or Ubuntu's package when it is missing
 * and this user may; throws with `CHROMIUM_HELP` when there is none.
 */
export function ensureChromium({ log }) {
  const have = found();
  if (have) return have;
  if (process.env.CHROMIUM_PATH) throw new Error(`CHROMIUM_PATH is ${process.env.CHROMIUM_PATH}, where there is no file. ${CHROMIUM_HELP}`);
  const apt = aptGet();
  if (!apt) throw new Error(CHROMIUM_HELP);
  log('no Chromium on this machine: installing it with apt-get (for the browser tests)');
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  const run = (...args) => spawnSync(apt[0], [...apt.slice(1), ...args], { stdio: 'inherit', env }).status === 0;
  run('update');
  for (const pkg of ['chromium', 'chromium-browser']) {
    if (run('install', '-y', pkg)) {
      const path = found();
      if (path) return path;
    }
  }
  throw new Error(`installing Chromium with apt-get failed. ${CHROMIUM_HELP}`);
}
