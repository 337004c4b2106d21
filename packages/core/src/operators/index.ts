import type { Vertex } from '../graph.ts';
import {
  countSettings,
  filterSettings,
  intervalJoinSettings,
  mapSettings,
  statefulCounterSettings,
  sumSettings,
  windowJoinSettings,
  windowSettings,
} from '../operatorCatalog.ts';
import { intervalJoinOperator, windowJoinOperator } from './joins.ts';
import { countOperator, statefulCounterOperator, sumOperator } from './keyed.ts';
import { filterOperator, mapOperator } from './transforms.ts';
import { windowOperator } from './window.ts';
import type { OperatorContext, Output, StreamOperator } from './types.ts';

export type { OperatorContext, Output, RecordTime, StreamOperator } from './types.ts';

/**
 * Creates the transform or keyed operator of a vertex; sources and sinks do I/O and live in the runtime. A record
 * that makes it throw goes to its dead-letter output (see `guarded`).
 */
export function createOperator(v: Vertex, ctx: OperatorContext): StreamOperator {
  return guarded(v.type, build(v, ctx), ctx);
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
        wrapped = {
          emit: (r) => {
            try {
              out.emit(r);
            } catch (err) {
              thrownDownstream = err;
              throw err;
            }
          },
        };
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

function build(v: Vertex, ctx: OperatorContext): StreamOperator {
  switch (v.type) {
    case 'filter':
      return filterOperator(filterSettings.parse(v.settings));
    case 'map':
      return mapOperator(mapSettings.parse(v.settings), ctx);
    case 'count':
      countSettings.parse(v.settings);
      return countOperator(ctx);
    case 'sum':
      return sumOperator(sumSettings.parse(v.settings), ctx);
    case 'window':
      return windowOperator(windowSettings.parse(v.settings), ctx);
    case 'windowJoin':
      return windowJoinOperator(windowJoinSettings.parse(v.settings), ctx);
    case 'intervalJoin':
      return intervalJoinOperator(intervalJoinSettings.parse(v.settings), ctx);
    case 'statefulCounter':
      return statefulCounterOperator(statefulCounterSettings.parse(v.settings), ctx);
    default:
      throw new Error(`operator type '${v.type}' is not a transform or keyed operator`);
  }
}
