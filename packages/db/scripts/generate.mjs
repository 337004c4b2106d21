// Generates the Prisma client into packag../../..c/generated, offline.
// Generation itself is WASM, but the Prisma CLI insists on a schema engine binary, which it
// would download from outside the npm registry; when the real one is absent, any existing
// file satisfies the check.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, '../../..');
const require = createRequire(join(here, '..', 'package.json'));

const prismaCli = join(dirname(require.resolve('prisma/package.json')), 'build', 'index.js');

function hasRealSchemaEngine() {
  if (process.env.PRISMA_SCHEMA_ENGINE_BINARY) return true;
  try {
    const prismaRequire = createRequire(require.resolve('prisma/package.json'));
    const enginesDir = dirname(prismaRequire.resolve('@prisma/engines/package.json'));
    return readdirSync(enginesDir).some((f) => f.startsWith('schema-engine'));
  } catch {
    return false;
  }
}

const env = { ...process.env, PRISMA_HIDE_UPDATE_MESSAGE: '1', CHECKPOINT_DISABLE: '1' };
if (!hasRealSchemaEngine()) env.PRISMA_SCHEMA_ENGINE_BINARY = process.execPath;

const result = spawnSync(process.execPath, [prismaCli, 'generate', '--config', join(root, 'prisma.config.ts')], { cwd: root, env, stdio: 'inherit' });
if (result.status !== 0 || !existsSync(join(here, '..', 'src', 'generated'))) {
  console.error('prisma generate failed');
  process.exit(result.status || 1);
}
