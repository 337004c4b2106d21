import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { clearUserOperators, EventGenerator, type GraphInput } from '@keyflow/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  countPipeline,
  generatorCounts,
  killWorkerRunning,
  startStack,
  tableCounts,
  waitFor,
  waitForCheckpoint,
  waitForFinished,
  waitForRecovered,
  waitForState,
  type Stack,
} from './harness.ts';
import { checkpointOffsets, converged, countsAtOffsets, expectProgress, requestRescale } from './rescaleDriver.ts';

// User operators (@keyflow/sdk) on the real engine: the example counter and dedupe, loaded from examples/operators
// by the control plane and every worker, exact across a kill -9 and live rescales; and a worker that lacks the
// operator, or has other code under its name, refuses to run it and the job says why.

const EXAMPLES = fileURLToPath(new URL('../../../examples/operators', import.meta.url));
const TOTAL = 400_000;
const settings = { seed: 7, rate: 10_000, keys: 2000, skew: 'uniform', total: TOTAL, splits: 8 } as const;

/** Per user, the events whose item that user had sent before (what dedupe sends to its `duplicates` output). */
function expectedDuplicates(): { pairs: number; duplicates: Map<string, number> } {
  const gen = new EventGenerator({ ...settings, zipfExponent: 1 });
  const seen = new Set<string>();
  const duplicates = new Map<string, number>();
  for (let i = 0; i < TOTAL; i++) {
    const { user, item } = gen.eventAt(i);
    const pair = `${user}|${item}`;
    if (seen.has(pair)) duplicates.set(user, (duplicates.get(user) ?? 0) + 1);
    else seen.add(pair);
  }
  return { pairs: seen.size, duplicates };
}

const graph = (prefix: string): GraphInput => ({
  vertices: [
    { id: 'events', type: 'generator', parallelism: 1, settings },
    { id: 'counter', type: 'sdkCounter', parallelism: 2, settings: { field: 'item' } },
    { id: 'counts', type: 'postgres', parallelism: 2, settings: { table: `sdk_counts_${prefix}`, valueField: 'count' } },
    // Event time spans TOTAL ms here: within a 100-day TTL every repeat of a user's item is a duplicate.
    { id: 'dedupe', type: 'dedupe', parallelism: 2, settings: { idField: 'item', ttl: '100d', time: 'event' } },
    { id: 'firsts', type: 'postgres', parallelism: 2, settings: { table: `sdk_firsts_${prefix}`, keyField: 'user, item', valueField: 'amount' } },
    { id: 'dupCount', type: 'count', parallelism: 1 },
    { id: 'dups', type: 'postgres', parallelism: 1, settings: { table: `sdk_dups_${prefix}`, valueField: 'count' } },
  ],
  edges: [
    { from: 'events', to: 'counter', partitioning: 'hash', key: 'user' },
    { from: 'counter', to: 'counts', partitioning: 'forward' },
    { from: 'events', to: 'dedupe', partitioning: 'hash', key: 'user' },
    { from: 'dedupe', to: 'firsts', partitioning: 'hash', key: 'user' },
    { from: 'dedupe', to: 'dupCount', partitioning: 'hash', key: 'user', output: 'duplicates' },
    { from: 'dupCount', to: 'dups', partitioning: 'forward' },
  ],
});

describe('user operators from KEYFLOW_OPERATORS on real workers', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack({ workers: 3, slots: 4, env: { KEYFLOW_OPERATORS: EXAMPLES } });
  });
  afterAll(async () => {
    await stack?.close();
  });

  it('counts and dedupes exactly across a kill -9 and live rescales 2 → 3 → 1, side output included', async () => {
    const prefix = stack.prefix.replace(/\W/g, '_').toLowerCase();
    const p = await stack.client.createPipeline({ name: `sdk-${stack.prefix}`, graph: graph(prefix) });
    const job = await stack.client.deployJob({ pipelineId: p.id, checkpointIntervalMs: 500 });
    // The job records the versions it was deployed with.
    const row = await stack.prisma.job.findUniqueOrThrow({ where: { id: job.id } });
    expect((row.plan as { operators?: Record<string, string> }).operators).toEqual({
      sdkCounter: expect.stringMatching(/^sdkCounter@[0-9a-f]{12}$/),
      dedupe: expect.stringMatching(/^dedupe@[0-9a-f]{12}$/),
    });

    await waitForCheckpoint(stack, job.id);
    await killWorkerRunning(stack, job.id, 'counter');
    await stack.addWorker();
    await waitForRecovered(stack, job.id, 60_000);
    await expectProgress(stack, job.id, 'counter');
    for (const [vertex, parallelism] of [
      ['counter', 3],
      ['dedupe', 3],
      ['counter', 1],
      ['dedupe', 1],
    ] as const) {
      await requestRescale(stack, job.id, vertex, parallelism);
      await converged(stack, job.id, vertex, parallelism);
      await expectProgress(stack, job.id, vertex);
    }
    const during = (await stack.client.getJob(job.id)).metrics?.vertices.events?.recordsOut ?? 0;
    expect(during, 'the steps came while events were still flowing (else they proved less)').toBeLessThan(TOTAL);
    const done = await waitForFinished(stack, job.id, 180_000);
    expect(done.metrics?.vertices.counter?.deadLetters ?? 0).toBe(0);

    const counts = await tableCounts(`sdk_counts_${prefix}`);
    const expected = generatorCounts({ ...settings, total: TOTAL });
    expect(counts.size).toBe(expected.size);
    expect([...expected].filter(([k, n]) => counts.get(k) !== n).slice(0, 5)).toEqual([]);

    const { pairs, duplicates } = expectedDuplicates();
    expect((await tableCounts(`sdk_firsts_${prefix}`).catch(() => new Map())).size).toBe(pairs);
    const dups = await tableCounts(`sdk_dups_${prefix}`);
    expect(dups.size).toBe(duplicates.size);
    expect([...duplicates].filter(([k, n]) => dups.get(k) !== n).slice(0, 5)).toEqual([]);
  });
});

describe('a worker that lacks a job’s user operator', () => {
  let stack: Stack;
  let variantDir: string;
  beforeAll(async () => {
    // The control plane has the examples; the one worker has none of them.
    stack = await startStack({ workers: 1, env: { KEYFLOW_OPERATORS: EXAMPLES }, workerEnv: { KEYFLOW_OPERATORS: '' } });
    variantDir = mkdtempSync(join(tmpdir(), 'keyflow-operators-'));
  });
  afterAll(async () => {
    await stack?.close();
    rmSync(variantDir, { recursive: true, force: true });
  });

  const counterJob = async (name: string) => {
    const p = await stack.client.createPipeline({
      name: `${name}-${stack.prefix}`,
      graph: {
        vertices: [
          { id: 'events', type: 'generator', parallelism: 1, settings: { rate: 100 } },
          { id: 'counter', type: 'sdkCounter', parallelism: 1 },
          { id: 'log', type: 'log', parallelism: 1 },
        ],
        edges: [
          { from: 'events', to: 'counter', partitioning: 'hash', key: 'user' },
          { from: 'counter', to: 'log', partitioning: 'forward' },
        ],
      },
    });
    return stack.client.deployJob({ pipelineId: p.id });
  };

  /** Why the job failed: it never runs, and gives up after its bounded restarts with the worker's refusal as reason. */
  const refusal = (jobId: string) =>
    waitFor(
      async () => {
        const j = await stack.client.getJob(jobId);
        expect(j.events.map((e) => e.toState)).not.toContain('RUNNING');
        return j.state === 'FAILED' && j.failureReason;
      },
      60_000,
      'the job to fail, saying why',
    );

  it('refuses the task when it has no such operator, and the job says so', async () => {
    // The pool shows what each worker can run.
    expect((await stack.client.listWorkers()).map((w) => w.operators)).toEqual([[]]);
    const job = await counterJob('missing-op');
    expect(await refusal(job.id)).toMatch(/has no operator 'sdkCounter' \(the job was deployed with sdkCounter@[0-9a-f]{12}\).*KEYFLOW_OPERATORS/);
  });

  it('refuses to run other code under the operator’s name', async () => {
    // Same kind, other bytes: another version.
    writeFileSync(join(variantDir, 'counter.ts'), `// a variant\nexport { default } from ${JSON.stringify(join(EXAMPLES, 'counter.ts'))};\n`);
    for (const w of stack.workers) w.kill('SIGKILL');
    await stack.addWorker('variant', { env: { KEYFLOW_OPERATORS: variantDir } });
    const variant = (await stack.client.listWorkers()).find((w) => w.id === 'variant');
    expect(variant?.operators).toEqual([expect.stringMatching(/^sdkCounter@[0-9a-f]{12}$/)]);
    const job = await counterJob('other-version');
    expect(await refusal(job.id)).toMatch(
      /has operator 'sdkCounter' at sdkCounter@[0-9a-f]{12}, but the job was deployed with sdkCounter@[0-9a-f]{12}/,
    );
  });
});

describe('a control plane restarted without a running job’s user operator', () => {
  let stack: Stack;
  beforeAll(async () => {
    // The workers keep the examples; the control plane loses them when it restarts.
    stack = await startStack({ workers: 1, slots: 8, env: { KEYFLOW_OPERATORS: EXAMPLES } });
  });
  afterAll(async () => {
    await stack?.close();
  });

  it('fails that job, saying why and from which checkpoint, settles its sink and stops its subtasks; it coordinates the others', async () => {
    const prefix = stack.prefix.replace(/\W/g, '_').toLowerCase();
    const source = { seed: 3, rate: 2000, keys: 200, skew: 'uniform', splits: 2 } as const;
    const user = await stack.client.createPipeline({
      name: `lost-op-${stack.prefix}`,
      graph: {
        vertices: [
          { id: 'events', type: 'generator', parallelism: 1, settings: source },
          { id: 'counter', type: 'sdkCounter', parallelism: 1 },
          { id: 'counts', type: 'postgres', parallelism: 1, settings: { table: `lost_op_${prefix}`, valueField: 'count' } },
        ],
        edges: [
          { from: 'events', to: 'counter', partitioning: 'hash', key: 'user' },
          { from: 'counter', to: 'counts', partitioning: 'forward' },
        ],
      },
    });
    const builtIn = await stack.client.createPipeline({
      name: `built-in-${stack.prefix}`,
      graph: countPipeline(`built_in_${prefix}`, { ...source, seed: 4 }),
    });
    const lost = await stack.client.deployJob({ pipelineId: user.id, checkpointIntervalMs: 500 });
    const other = await stack.client.deployJob({ pipelineId: builtIn.id, checkpointIntervalMs: 500 });
    try {
      await waitForCheckpoint(stack, lost.id);
      await waitForCheckpoint(stack, other.id);

      // A control plane process started without them has no user operators (the catalog is per process).
      clearUserOperators();
      await stack.restartControl(0, { KEYFLOW_OPERATORS: '' });
      const failed = await waitForState(stack, lost.id, 'FAILED');
      const last = await stack.prisma.checkpoint.findFirstOrThrow({
        where: { jobId: lost.id, status: 'COMPLETED' },
        orderBy: { number: 'desc' },
      });
      expect(failed.failureReason).toBe(
        `this control plane cannot run the job: stored graph is invalid: unknown operator type 'sdkCounter' ` +
          `(start the control plane and the workers with the KEYFLOW_OPERATORS that provide it); ` +
          `its last completed checkpoint is ${last.number}: deploy the pipeline again from it to go on where it was`,
      );
      // Its subtasks leave the worker, and its sink holds exactly what that checkpoint covers.
      await waitFor(
        async () => (await stack.client.listWorkers()).every((w) => w.subtasks.every((s) => s.jobId !== lost.id)),
        30_000,
        'the failed job’s subtasks to stop',
      );
      const expected = countsAtOffsets(source, await checkpointOffsets(stack.prisma, last.id));
      const actual = await tableCounts(`lost_op_${prefix}`);
      expect([...expected].filter(([k, n]) => actual.get(k) !== n).slice(0, 5)).toEqual([]);
      expect([...actual.keys()].filter((k) => !expected.has(k))).toEqual([]);

      // The other job is coordinated: taken up as it runs, it rescales (a change a standing-by control plane refuses)
      // and checkpoints.
      expect((await stack.client.getJob(other.id)).state).toBe('RUNNING');
      await requestRescale(stack, other.id, 'count', 3);
      await converged(stack, other.id, 'count', 3);
      await expectProgress(stack, other.id, 'count');
    } finally {
      await stack.client.cancelJob(other.id).catch(() => {});
      await stack.client.cancelJob(lost.id).catch(() => {});
    }
  });
});

describe('a user operator that throws', () => {
  const SDK = fileURLToPath(new URL('../../../packages/sdk/src/index.ts', import.meta.url));
  let stack: Stack;
  let dir: string;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'keyflow-throwing-'));
    writeFileSync(
      join(dir, 'throwing.ts'),
      `import { defineOperator, z } from ${JSON.stringify(SDK)};
export const needsModel = defineOperator({
  kind: 'needsModel', title: 'Needs a model', description: 'fails to open', settings: z.object({}), inputs: 'keyed',
  open() { throw new Error('model file /models/fraud.onnx is missing'); },
  process(record, ctx) { ctx.emit(record); },
});
export const picky = defineOperator({
  kind: 'picky', title: 'Picky', description: 'throws on big amounts', settings: z.object({}), inputs: 'keyed',
  process(record, ctx) {
    if ((record.amount as number) > 90) throw new Error('amount ' + String(record.amount) + ' is too big');
    ctx.emit(record);
  },
});
`,
    );
    stack = await startStack({ workers: 1, env: { KEYFLOW_OPERATORS: dir } });
  });
  afterAll(async () => {
    await stack?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const deploy = async (type: string, generator: Record<string, unknown>) => {
    const p = await stack.client.createPipeline({
      name: `${type}-${stack.prefix}`,
      graph: {
        vertices: [
          { id: 'events', type: 'generator', parallelism: 1, settings: generator },
          { id: 'op', type, parallelism: 1 },
          { id: 'log', type: 'log', parallelism: 1 },
        ],
        edges: [
          { from: 'events', to: 'op', partitioning: 'hash', key: 'user' },
          { from: 'op', to: 'log', partitioning: 'forward' },
        ],
      },
    });
    return stack.client.deployJob({ pipelineId: p.id, checkpointIntervalMs: 500 });
  };

  it('in open: the subtask fails with the operator’s message, and the job says it', async () => {
    const job = await deploy('needsModel', { rate: 100 });
    // It fails the same way on every restart: the job gives up after its bounded restarts, with that reason.
    const failed = await waitForState(stack, job.id, 'FAILED', 60_000);
    expect(failed.failureReason).toMatch(/op#0 failed: needsModel failed to open: model file \/models\/fraud\.onnx is missing/);
  });

  it('on a record: that record is dead-lettered with the message and the job goes on', async () => {
    const job = await deploy('picky', { rate: 0, total: 5000, seed: 3 });
    await waitForFinished(stack, job.id, 60_000);
    const op = await waitFor(
      async () => {
        const m = (await stack.client.getJob(job.id)).metrics?.vertices.op;
        return m?.recordsIn === 5000 && m;
      },
      20_000,
      'the operator’s final metrics',
    );
    // About a tenth of the amounts are above 90: those, and only those, are dead letters.
    expect(op.deadLetters).toBeGreaterThan(300);
    expect(op.recordsOut + op.deadLetters).toBe(5000);
    const samples = await stack.client.deadLetters(job.id, 'op');
    expect(samples[0]?.reason).toMatch(/^picky threw: amount \d+(\.\d+)? is too big$/);
  });
});
