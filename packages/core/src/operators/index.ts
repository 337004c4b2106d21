import type { Vertex } from '../graph.ts';
import { userOperatorDefinition } from '../operatorCatalog.ts';
import { bindOperator } from '../sdk/bind.ts';
import type { OperatorDefinition } from '../sdk/define.ts';
import { notingDownstream } from './output.ts';
import { intervalJoinOperator, joinOperator, windowJoinOperator } from './joins.ts';
import { aggregateOperator, countOperator, statefulCounterOperator, sumOperator } from './keyed.ts';
import { filterOperator, mapOperator } from './transforms.ts';
import { windowOperator } from './window.ts';
import type { OperatorContext, Output, StreamOperator } from './types.ts';

export type { OperatorContext, Output, RecordTime, StreamOperator } from './types.ts';
export {
  aggregateOperator,
  countOperator,
  filterOperator,
  intervalJoinOperator,
  joinOperator,
  mapOperator,
  statefulCounterOperator,
  sumOperator,
  windowJoinOperator,
  windowOperator,
};

/** The built-in transforms and keyed operators, written on the SDK like a user's (sources and sinks do I/O: the runtime's). */
export const builtinOperators: Readonly<Record<string, OperatorDefinition>> = Object.fromEntries(
  [
    filterOperator,
    mapOperator,
    countOperator,
    sumOperator,
    statefulCounterOperator,
    windowOperator,
    windowJoinOperator,
    intervalJoinOperator,
    joinOperator,
    aggregateOperator,
  ].map((d) => [d.kind, d as unknown as OperatorDefinition]),
);

/** The code of a transform or keyed operator: a built-in, or a user operator this process loaded. */
export function operatorDefinition(type: string): OperatorDefinition | undefined {
  return Object.hasOwn(builtinOperators, type) ? builtinOperators[type] : userOperatorDefinition(type);
}

/**
 * Creates the transform or keyed operator of a vertex; sources and sinks do I/O and live in the runtime. A record
 * that makes it throw goes to its dead-letter output (see `guarded`).
 */
export function createOperator(v: Vertex, ctx: OperatorContext): StreamOperator {
  const def = operatorDefinition(v.type);
  if (!def) throw new Error(`operator type '${v.type}' is not a transform or keyed operator this process has`);
  return guarded(v.type, bindOperator(def, v.settings, ctx), ctx);
}

/**
 * An operator whose failure on one record dead-letters that record with the reason instead of failing the job
 * (DESIGN §7: bad input is never a crash). What its downstream throws is not its failure and goes on up.
 */
export function guarded(type: string, op: StreamOperator, ctx: OperatorContext): StreamOperator {
  let downstream: Output | undefined;
  let wrapped: Output | undefined;
  let thrownDownstream: unknown;
  return {
    process(record, key, out, input) {
      if (out !== downstream) {
        downstream = out;
        wrapped = notingDownstream(out, (err) => (thrownDownstream = err));
      }
      try {
        op.process(record, key, wrapped!, input);
      } catch (err) {
        if (err === thrownDownstream) throw err;
        ctx.deadLetter(record, `${type} threw: ${err instanceof Error ? err.message : String(err)}`);
      }
    },
    ...(op.onWatermark && { onWatermark: op.onWatermark.bind(op) }),
    ...(op.onProcessingTime && { onProcessingTime: op.onProcessingTime.bind(op) }),
  };
}
