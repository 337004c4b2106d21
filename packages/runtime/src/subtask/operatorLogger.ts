import type { OperatorLogger } from '@keyflow/core';
import type { Logger } from '../logger.ts';

const WINDOW_MS = 10_000;
const LINES_PER_WINDOW = 100;

/**
 * An operator's logger: the subtask's, bound to the vertex, at most 100 lines per 10 s (an operator that logs per
 * record would otherwise drown the worker's log); what it drops is counted in a warning when the window ends.
 */
export function operatorLogger(log: Logger, vertexId: string, clock: () => number = Date.now): OperatorLogger {
  const bound = log.child({ vertexId });
  let windowStart = -Infinity;
  let lines = 0;
  let dropped = 0;
  const write = (level: 'info' | 'warn' | 'error') => (message: string, fields?: Record<string, unknown>) => {
    const now = clock();
    if (now - windowStart >= WINDOW_MS) {
      if (dropped)
        bound.warn({ dropped }, `the operator logged more than ${LINES_PER_WINDOW} lines in ${WINDOW_MS / 1000} s: ${dropped} were dropped`);
      windowStart = now;
      lines = 0;
      dropped = 0;
    }
    if (++lines > LINES_PER_WINDOW) dropped++;
    else bound[level](fields ?? {}, message);
  };
  return { info: write('info'), warn: write('warn'), error: write('error') };
}
