import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { clearUserOperators, operatorSpec, userOperatorDefinition } from '@keyflow/core';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { loadOperators } from './loadOperators.ts';

const CORE = fileURLToPath(new URL('../../../core/src/index.ts', import.meta.url));

/** An operator module's text: `kind`, and a comment that changes its bytes (its version) without changing it. */
const operatorModule = (kind: string, note = '') => `// ${note}
import { z } from 'zod';
import { defineOperator, valueState } from ${JSON.stringify(CORE)};
export default defineOperator({
  kind: ${JSON.stringify(kind)},
  title: ${JSON.stringify(kind)},
  description: 'test operator',
  settings: z.object({}),
  inputs: 'keyed',
  state: { n: valueState() },
  process(rec, ctx) { ctx.emit(rec); },
});
`;

let dir: string;
beforeEach(() => {
  // Inside the package, so that the modules' `import 'zod'` resolves as a user's would from their project.
  dir = mkdtempSync(fileURLToPath(new URL('../../.test-operators-', import.meta.url)));
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
  clearUserOperators();
});

const write = (name: string, text: string) => {
  const path = join(dir, name);
  mkdirSync(join(path, '..'), { recursive: true });
  writeFileSync(path, text);
  return path;
};

describe('loadOperators (KEYFLOW_OPERATORS)', () => {
  it('loads every module of a folder (not its tests or helpers) at a version that is its content hash', async () => {
    write('ops/a.ts', operatorModule('opA'));
    write('ops/b.mjs', operatorModule('opB').replace(/^import \{ z \}.*$/m, "import { z } from 'zod';"));
    write('ops/a.test.ts', 'throw new Error("a test is not an operator");');
    write('ops/helper.ts', 'export const two = 2;');
    const loaded = await loadOperators(' ops ,', dir);
    expect(loaded.map((l) => l.kind)).toEqual(['opA', 'opB']);
    expect(loaded[0]!.version).toMatch(/^opA@[0-9a-f]{12}$/);
    expect(operatorSpec('opA')).toMatchObject({ kind: 'keyed', version: loaded[0]!.version });
    expect(userOperatorDefinition('opB')?.kind).toBe('opB');
  });

  it('loads a package by its name, as resolved from the working directory', async () => {
    write('node_modules/acme-operators/package.json', JSON.stringify({ name: 'acme-operators', type: 'module', main: 'index.mjs' }));
    // A published package, compiled to JavaScript with its own copy of the SDK: what defineOperator returns is
    // recognised by its mark, not by which copy made it.
    write(
      'node_modules/acme-operators/index.mjs',
      `import { z } from 'zod';
export const acmeScore = Object.freeze({
  [Symbol.for('keyflow.operator')]: 1,
  kind: 'acmeScore', title: 'Acme score', description: 'scores', settings: z.object({}), inputs: 'keyed',
  process(record, ctx) { ctx.emit(record); },
});
`,
    );
    const [loaded] = await loadOperators('acme-operators', dir);
    expect(loaded).toMatchObject({ kind: 'acmeScore', version: expect.stringMatching(/^acmeScore@[0-9a-f]{12}$/) });
    expect(loaded!.source).toMatch(/acme-operators\/index\.mjs$/);
  });

  it('gives other bytes another version', async () => {
    const first = (await loadOperators(write('v1/op.ts', operatorModule('opV', 'one')), dir))[0]!.version;
    const second = (await loadOperators(write('v2/op.ts', operatorModule('opV', 'two')), dir))[0]!.version;
    expect(second).not.toBe(first);
    expect(operatorSpec('opV')!.version).toBe(second);
  });

  it('loads nothing when unset or empty', async () => {
    expect(await loadOperators(undefined, dir)).toEqual([]);
    expect(await loadOperators(' , ', dir)).toEqual([]);
  });

  it.each<[string, (d: string) => string, RegExp]>([
    ['a path where nothing is', () => './missing', /KEYFLOW_OPERATORS: no file or folder at .*missing/],
    ['a package that is not installed', () => 'keyflow-no-such-package', /cannot find package 'keyflow-no-such-package'/],
    ['a folder without modules', () => (mkdirSync(join(dir, 'empty')), 'empty'), /holds no \.ts or \.js module/],
    ['a file that exports no operator', () => write('plain.ts', 'export const x = 1;'), /plain\.ts exports no operator/],
    ['a module that throws as it loads', () => write('broken.ts', 'throw new Error("bad import");'), /broken\.ts failed to load: bad import/],
    ['an operator named as a built-in', () => write('count.ts', operatorModule('count')), /defines 'count', the name of a built-in operator/],
    [
      'two modules that define one operator',
      () => (write('twice/a.ts', operatorModule('dup', 'a')), write('twice/b.ts', operatorModule('dup', 'b')), 'twice'),
      /operator 'dup' is defined twice, in .*a\.ts and in .*b\.ts/,
    ],
  ])('refuses %s, saying what is wrong', async (_what, entry, message) => {
    await expect(loadOperators(entry(dir), dir)).rejects.toThrow(message);
  });
});
