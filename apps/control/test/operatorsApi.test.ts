import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createKeyflowClient, userOperatorSpec } from '@keyflow/api';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startStack, type Stack } from './harness.ts';

// GET /api/operators: the user operators the control plane loaded (KEYFLOW_OPERATORS), as the dashboard learns them.

const SDK = fileURLToPath(new URL('../../../packages/sdk/src/index.ts', import.meta.url));

const MODULE = `import { defineOperator, duration, valueState, z } from ${JSON.stringify(SDK)};
export const tagger = defineOperator({
  kind: 'tagger', title: 'Tagger', description: 'Adds a tag to each record', inputs: 'any',
  settings: z.object({
    tag: z.string().min(1).regex(/^[a-z]+$/, 'lower-case letters only').default('seen').describe('The tag to add'),
  }).strict(),
  process(record, ctx) { ctx.emit({ ...record, tag: ctx.settings.tag }); },
});
export const splitter = defineOperator({
  kind: 'splitter', title: 'Splitter', description: 'Big amounts to the side', inputs: 'keyed', outputs: ['big'],
  settings: z.object({
    limit: z.number().min(0, 'not below zero').max(1000).default(100).describe('Amounts above this go to big'),
    hold: duration().prefault('5s').describe('How long a key is held'),
    mode: z.enum(['strict', 'loose']).optional().describe('How to compare'),
  }).strict(),
  state: { n: valueState<number>() },
  process(record, ctx) { if ((record.amount as number) > ctx.settings.limit) ctx.emitTo('big', record); else ctx.emit(record); },
});
`;

describe('GET /api/operators', () => {
  let stack: Stack;
  let dir: string;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'keyflow-operators-api-'));
    writeFileSync(join(dir, 'ops.ts'), MODULE);
    stack = await startStack({ workers: 0, env: { KEYFLOW_OPERATORS: dir } });
  });
  afterAll(async () => {
    await stack?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('lists the loaded operators with their kind, version, side outputs and settings schema', async () => {
    const { operators } = await stack.client.listOperators();
    expect(operators.map((o) => o.type)).toEqual(['tagger', 'splitter']);
    const [tagger, splitter] = operators;
    expect(tagger).toMatchObject({ type: 'tagger', kind: 'transform', label: 'Tagger', description: 'Adds a tag to each record' });
    expect(tagger).not.toHaveProperty('outputs');
    expect(splitter).toMatchObject({ type: 'splitter', kind: 'keyed', label: 'Splitter', outputs: ['big'] });
    // Both come from one module: one hash, each under its own type.
    expect(tagger!.version).toMatch(/^tagger@[0-9a-f]{12}$/);
    expect(splitter!.version).toBe(`splitter@${tagger!.version.split('@')[1]}`);
    expect(tagger!.settingsSchema).toMatchObject({
      type: 'object',
      additionalProperties: false,
      properties: {
        tag: { type: 'string', default: 'seen', description: 'The tag to add', errorMessage: { pattern: 'lower-case letters only' } },
      },
    });
    expect(splitter!.settingsSchema).toMatchObject({
      properties: {
        limit: { type: 'number', minimum: 0, maximum: 1000, default: 100, errorMessage: { minimum: 'not below zero' } },
        hold: { type: 'string', format: 'duration', default: '5s', description: 'How long a key is held' },
        mode: { enum: ['strict', 'loose'], description: 'How to compare' },
      },
    });
  });

  it('gives the dashboard settings that check as the operator does', async () => {
    const { operators } = await stack.client.listOperators();
    const splitter = userOperatorSpec(operators.find((o) => o.type === 'splitter')!);
    expect(splitter.settings.parse({ hold: '2m' })).toEqual({ limit: 100, hold: 120_000 });
    const wrong = splitter.settings.safeParse({ limit: -1, mode: 'exact' });
    expect(wrong.error?.issues.map((i) => [i.path.join('.'), i.message])).toEqual([
      ['limit', 'not below zero'],
      ['mode', 'Invalid option: expected one of "strict"|"loose"'],
    ]);
  });

  it('is for every role, and for nobody without credentials', async () => {
    const viewer = (await stack.client.createApiKey({ name: 'viewer key', role: 'viewer', expiresInDays: 1 })).key;
    expect((await createKeyflowClient(stack.url, { token: viewer }).listOperators()).operators).toHaveLength(2);
    expect((await fetch(`${stack.url}/api/operators`)).status).toBe(401);
  });
});
