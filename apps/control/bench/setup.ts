import { mkdirSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus } from 'node:os';
import { fileURLToPath } from 'node:url';
import { createMigratedDatabase, createSinkRole } from '@keyflow/db/testing';

/**
 * A fresh migrated database of the run's own, made the process's DATABASE_URL, with a Redis prefix of its own
 * unless one is set; with `sinkRole` (the default) sinks write through their own restricted role, as `npm run up`
 * sets them up. The caller drops it (`dropDatabase`) at the end.
 */
export async function benchDatabase(opts: { sinkRole?: boolean } = {}): Promise<string> {
  const serverUrl = process.env.DATABASE_URL ?? 'postgresql://postgres@127.0.0.1:5432/postgres';
  const dbUrl = await createMigratedDatabase(serverUrl, `keyflow_bench_${Date.now().toString(36)}`);
  process.env.DATABASE_URL = dbUrl;
  if (opts.sinkRole ?? true) process.env.KEYFLOW_SINK_DATABASE_URL = await createSinkRole(dbUrl);
  process.env.KEYFLOW_PREFIX ??= 'kfbench';
  return dbUrl;
}

/** Median, min and max of the runs' figures, each first rounded to `digits` decimals (none given: as they are). */
export function stats(xs: number[], digits?: number): { median: number; min: number; max: number } {
  const sorted = xs.map((x) => (digits === undefined ? x : Number(x.toFixed(digits)))).sort((a, b) => a - b);
  return { median: sorted[Math.floor(sorted.length / 2)]!, min: sorted[0]!, max: sorted.at(-1)! };
}

/** `stats`' figures as "median (min–max)". */
export function spread(x: { median: number; min: number; max: number }): string {
  return `${x.median} (${x.min}–${x.max})`;
}

/**
 * The worker pool a benchmark starts, as BENCH_WORKERS and BENCH_SLOTS set it: worker processes (undefined: the
 * benchmark's own default) of `slots` slots each (default 2). Anything but a whole number from 1 is refused.
 */
export function benchPool(): { workers: number | undefined; slots: number } {
  const workers = process.env.BENCH_WORKERS === undefined ? undefined : Number(process.env.BENCH_WORKERS);
  const slots = Number(process.env.BENCH_SLOTS ?? 2);
  if (!((workers === undefined || (Number.isInteger(workers) && workers >= 1)) && Number.isInteger(slots) && slots >= 1))
    throw new Error(`BENCH_WORKERS and BENCH_SLOTS take whole numbers from 1, not '${process.env.BENCH_WORKERS}' and '${process.env.BENCH_SLOTS}'`);
  return { workers, slots };
}

/** When and on what a result was measured: its first fields. */
export function machine(): { date: string; cores: number; cpu: string } {
  return { date: new Date().toISOString(), cores: availableParallelism(), cpu: cpus()[0]?.model ?? 'unknown' };
}

/** Writes a benchmark's result to docs/benchmarks/`file` and says so. */
export function writeResult(file: string, result: unknown): void {
  const dir = fileURLToPath(new URL('../../../docs/benchmarks/', import.meta.url));
  mkdirSync(dir, { recursive: true });
  writeFileSync(`${dir}${file}`, `${JSON.stringify(result, null, 2)}\n`);
  console.log(`wrote docs/benchmarks/${file}`);
}

/**
 * The Nexmark source of the benchmarks: as fast as it goes, event time at 10 M events/s as the Nexmark suite runs it
 * (its `tps`): over a run, windows of 10 s hold every event (few fire), as in Flink's runs.
 */
export const NEXMARK_SOURCE = { seed: 1, rate: 0, eventsPerSecond: 10_000_000, splits: 16 };
