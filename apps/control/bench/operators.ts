// Benchmark (not a test): what one record costs in an operator alone, as a subtask's chain drives it (the key set on
// the state backend, then `process` through createOperator, with its guard and the SDK's binding), no I/O. For each
// built-in keyed operator and the example SDK counter: BENCH_RUNS (3) runs of 5,000,000 records over 50,000 keys
// after a warm-up, median with min and max, in ns per record. Writes docs/benchmarks/operators.json.
import { mkdirSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus } from 'node:os';
import { fileURLToPath } from 'node:url';
import { createOperator, keyGroupFor, KeyedStateBackend, registerOperator, type OperatorDefinition, type Rec } from '@keyflow/core';
import counter from '../../../examples/operators/counter.ts';
import { stats } from './setup.ts';

const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const RECORDS = 5_000_000;
const KEYS = 50_000;
const MAX_PARALLELISM = 128;

registerOperator(counter as unknown as OperatorDefinition, 'sdkCounter@bench');

const operators: { type: string; settings: Record<string, unknown> }[] = [
  { type: 'count', settings: {} },
  { type: 'sum', settings: { field: 'amount' } },
  { type: 'statefulCounter', settings: { field: 'item' } },
  { type: 'sdkCounter', settings: { field: 'item' } },
];

const keys = Array.from({ length: KEYS }, (_, i) => `user-${i}`);
const keyGroups = keys.map((k) => keyGroupFor(k, MAX_PARALLELISM));
const records: Rec[] = keys.map((user, i) => ({ user, item: `i${i % 1000}`, amount: 1 + (i % 100) }));

/** ns per record of one fresh operator over `n` records. */
function run(type: string, settings: Record<string, unknown>, n: number): number {
  const backend = new KeyedStateBackend(MAX_PARALLELISM);
  const op = createOperator({ id: type, type, parallelism: 1, settings }, { backend, deadLetter: () => {} });
  let emitted = 0;
  const out = { emit: () => void emitted++ };
  const t0 = performance.now();
  for (let i = 0; i < n; i++) {
    const j = (i * 7919) % KEYS;
    backend.setCurrentKey(keys[j]!, keyGroups[j]);
    op.process(records[j]!, keys[j], out);
  }
  const ns = ((performance.now() - t0) * 1e6) / n;
  if (emitted !== n) throw new Error(`${type} emitted ${emitted} of ${n}`);
  return ns;
}

const results: Record<string, { median: number; min: number; max: number }> = {};
for (const { type, settings } of operators) {
  run(type, settings, RECORDS / 5);
  const runs = Array.from({ length: RUNS }, () => run(type, settings, RECORDS));
  results[type] = stats(runs, 1);
  console.log(`${type}: ${results[type].median} ns/record (${results[type].min}–${results[type].max})`);
}

const out = fileURLToPath(new URL('../../../docs/benchmarks/operators.json', import.meta.url));
mkdirSync(fileURLToPath(new URL('../../../docs/benchmarks/', import.meta.url)), { recursive: true });
writeFileSync(
  out,
  `${JSON.stringify({ measuredAt: new Date().toISOString(), cores: availableParallelism(), cpu: cpus()[0]?.model, records: RECORDS, keys: KEYS, runs: RUNS, nsPerRecord: results }, null, 2)}\n`,
);
console.log(`wrote ${out}`);
