import { describe, expect, it } from 'vitest';
import type { Logger } from '../logger.ts';
import { operatorLogger } from './operatorLogger.ts';

function recorder() {
  const lines: { level: string; fields: object; msg: string }[] = [];
  const log = (bindings: Record<string, unknown>): Logger => ({
    debug: (fields, msg) => lines.push({ level: 'debug', fields: { ...bindings, ...fields }, msg }),
    info: (fields, msg) => lines.push({ level: 'info', fields: { ...bindings, ...fields }, msg }),
    warn: (fields, msg) => lines.push({ level: 'warn', fields: { ...bindings, ...fields }, msg }),
    error: (fields, msg) => lines.push({ level: 'error', fields: { ...bindings, ...fields }, msg }),
    child: (more) => log({ ...bindings, ...more }),
  });
  return { lines, logger: log({}) };
}

describe("an operator's logger", () => {
  it('writes through the subtask’s logger, bound to the vertex, with the fields given', () => {
    const { lines, logger } = recorder();
    operatorLogger(logger, 'dedupe').warn('odd id', { id: 7 });
    expect(lines).toEqual([{ level: 'warn', fields: { vertexId: 'dedupe', id: 7 }, msg: 'odd id' }]);
  });

  it('keeps at most 100 lines per 10 s and says how many it dropped', () => {
    const { lines, logger } = recorder();
    let now = 0;
    const log = operatorLogger(logger, 'v', () => now);
    for (let i = 0; i < 250; i++) log.info(`line ${i}`);
    expect(lines).toHaveLength(100);
    now = 10_000;
    log.error('after');
    expect(lines.slice(100)).toEqual([
      { level: 'warn', fields: { vertexId: 'v', dropped: 150 }, msg: 'the operator logged more than 100 lines in 10 s: 150 were dropped' },
      { level: 'error', fields: { vertexId: 'v' }, msg: 'after' },
    ]);
  });
});
