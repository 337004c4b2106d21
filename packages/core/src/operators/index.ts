import type { Vertex } from '../graph.ts';
import {
  countSettings,
  filterSettings,
  mapSettings,
  statefulCounterSettings,
  sumSettings,
} from '../operatorCatalog.ts';
import { countOperator, statefulCounterOperator, sumOperator } from './keyed.ts';
import { filterOperator, mapOperator } from './transforms.ts';
import type { OperatorContext, StreamOperator } from './types.ts';

export type { OperatorContext, Output, StreamOperator } from './types.ts';

/** Creates the transform or keyed operator of a vertex; sources and sinks do I/O and live in the runtime. */
export function createOperator(v: Vertex, ctx: OperatorContext): StreamOperator {
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
    case 'statefulCounter':
      return statefulCounterOperator(statefulCounterSettings.parse(v.settings), ctx);
    default:
      throw new Error(`operator type '${v.type}' is not a transform or keyed operator`);
  }
}
