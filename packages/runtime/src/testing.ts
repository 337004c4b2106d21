// What tests of other packages use to drive connectors against real servers: a throwaway Postgres with logical
// decoding, and helpers that emit from a source as a subtask would.
export { startLogicalPostgres, type LogicalPostgres } from './connectors/testing/logicalPostgres.ts';
export { checkpointSplits, emitExactly, emitUntil, rescaleSource, restoreSplits, type Emitted } from './connectors/testing/sourceDriver.ts';
