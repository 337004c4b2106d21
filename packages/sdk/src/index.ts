// What an operator author imports: the SDK of @keyflow/core, the helpers its settings and records need, and zod
// itself, so that a definition's schema is made by the same zod the engine checks it with.
export {
  defineOperator,
  duration,
  fieldName,
  getField,
  isKey,
  isOperatorDefinition,
  listState,
  mapState,
  reducingState,
  valueState,
  type Key,
  type ListState,
  type MapState,
  type OpenContext,
  type OperatorDefinition,
  type OperatorLogger,
  type ProcessContext,
  type Rec,
  type ReducingState,
  type StateHandles,
  type TimeDomain,
  type Timers,
  type ValueState,
} from '@keyflow/core';
export { z } from 'zod';
