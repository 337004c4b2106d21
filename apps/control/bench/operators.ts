// Benchmark (not a test): what one record costs in an operator alone, as a subtask's chain drives it (the key set on
// the state backend, then `process` through createOperator, with its guard and the SDK's binding), no I/O. For each
// built-in keyed operator and the example SDK counter: BENCH_RUNS (3) runs of 5,000,000 records over 50,000 keys
// after a warm-up, median with min and max, in ns per record. The windows take records whose event time advances
// 1 ms every 1,000 records and no watermark: what adding a record to its windows costs, none fired. Writes
// docs/benchmarks/operators.json.
import { mkdirSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus } from 'node:os';
import { fileURLToPath } from 'node:url';
import {
  createOperator,
  keyGroupFor,
  KeyedStateBackend,
  NO_WATERMARK,
  registerOperator,
  type OperatorDefinition,
  type Rec,
  type RecordTime,
} from '@keyflow/core';
import counter from '../../../examples/operators/counter.ts';
import { stats } from './setup.ts';

const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const RECORDS = 5_000_000;
const KEYS = 50_000;
const MAX_PARALLELISM = 128;

registerOperator(counter as unknown as OperatorDefinition, 'sdkCounter@bench');

/** `emits`: whether it emits a record per record taken in (the windows emit when they fire, which they do not here). */
const operators: { name?: string; type: string; settings: Record<string, unknown>; emits: boolean }[] = [
  { type: 'count', settings: {}, emits: true },
  { type: 'sum', settings: { field: 'amount' }, emits: true },
  { type: 'statefulCounter', settings: { field: 'item' }, emits: true },
  { type: 'sdkCounter', settings: { field: 'item' }, emits: true },
  { name: 'window tumbling 10s count', type: 'window', settings: { size: '10s' }, emits: false },
  { name: 'window sliding 10s/2s count', type: 'window', settings: { assigner: 'sliding', size: '10s', slide: '2s' }, emits: false },
];

const keys = Array.from({ length: KEYS }, (_, i) => `user-${i}`);
const keyGroups = keys.map((k) => keyGroupFor(k, MAX_PARALLELISM));
const records: Rec[] = keys.map((user, i) => ({ user, item: `i${i % 1000}`, amount: 1 + (i % 100) }));

/** ns per record of one fresh operator over `n` records. */
function run(type: string, settings: Record<string, unknown>, emits: boolean, n: number): number {
  const backend = new KeyedStateBackend(MAX_PARALLELISM);
  const time: RecordTime = { timestamp: undefined, watermark: NO_WATERMARK };
  const dead: string[] = [];
  const op = createOperator({ id: type, type, parallelism: 1, settings }, { backend, time, deadLetter: (_, reason) => void dead.push(reason) });
  let emitted = 0;
  const out = { emit: () => void emitted++ };
  const t0 = performance.now();
  for (let i = 0; i < n; i++) {
    const j = (i * 7919) % KEYS;
    time.timestamp = Math.floor(i / 1000);
    backend.setCurrentKey(keys[j]!, keyGroups[j]);
    op.process(records[j]!, keys[j], out);
  }
  const ns = ((performance.now() - t0) * 1e6) / n;
  if (dead.length) throw new Error(`${type} dead-lettered ${dead.length} records: ${dead[0]}`);
  if (emitted !== (emits ? n : 0)) throw new Error(`${type} emitted ${emitted} of ${n} records`);
  return ns;
}

const results: Record<string, { median: number; min: number; max: number }> = {};
for (const { name: given, type, settings, emits } of operators) {
  const name = given ?? type;
  run(type, settings, emits, RECORDS / 5);
  const runs = Array.from({ length: RUNS }, () => run(type, settings, emits, RECORDS));
  results[name] = stats(runs, 1);
  console.log(`${name}: ${results[name].median} ns/record (${results[name].min}–${results[name].max})`);
}

const out = fileURLToPath(new URL('../../../docs/benchmarks/operators.json', import.meta.url));
mkdirSync(fileURLToPath(new URL('../../../docs/benchmarks/', import.meta.url)), { recursive: true });
writeFileSync(
  out,
  `${JSON.stringify({ measuredAt: new Date().toISOString(), cores: availableParallelism(), cpu: cpus()[0]?.model, records: RECORDS, keys: KEYS, runs: RUNS, nsPerRecord: results }, null, 2)}\n`,
);
console.log(`wrote ${out}`);
