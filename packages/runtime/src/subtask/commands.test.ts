import { describe, expect, it } from 'vitest';
import type { Command } from '../protocol.ts';
import { Commands, isAfter, nextId } from './commands.ts';
import type { SubtaskContext } from './context.ts';

/** Just what Commands reads of its subtask: the attempt, the command stream's name and the log. */
function setup() {
  const warnings: object[] = [];
  const handled: Command[] = [];
  const ctx = {
    task: { attempt: 2 },
    commandsKey: () => 'cmd',
    log: { warn: (fields: object) => warnings.push(fields) },
  } as unknown as SubtaskContext;
  const commands = new Commands(ctx, async (c) => void handled.push(c));
  return { commands, warnings, handled };
}

const entry = (id: string, cmd: unknown): [string, string[]] => [id, ['c', typeof cmd === 'string' ? cmd : JSON.stringify(cmd)]];

describe('Commands', () => {
  it('queues valid commands of its attempt and handles them on drain, in order', async () => {
    const { commands, handled } = setup();
    commands.take([entry('1-0', { type: 'stop', attempt: 2 }), entry('1-1', { type: 'cancel', attempt: 2 })]);
    expect(handled).toEqual([]);
    await commands.drain();
    expect(handled.map((c) => c.type)).toEqual(['stop', 'cancel']);
    expect(commands.lastId).toBe('1-1');
  });

  it('skips and logs malformed commands, skips other attempts silently, and never takes an entry twice', async () => {
    const { commands, handled, warnings } = setup();
    commands.take([
      entry('1-0', 'not json'),
      entry('1-1', { type: 'trigger', attempt: 2, checkpoint: 'three' }),
      entry('1-2', { type: 'explode', attempt: 2 }),
      entry('1-3', { type: 'stop', attempt: 1 }),
      entry('1-4', { type: 'complete', attempt: 2, checkpoint: 3, checkpointId: 9 }),
    ]);
    commands.take([entry('1-4', { type: 'complete', attempt: 2, checkpoint: 3, checkpointId: 9 })]);
    await commands.drain();
    expect(handled).toEqual([{ type: 'complete', attempt: 2, checkpoint: 3, checkpointId: 9 }]);
    expect(warnings).toHaveLength(3);
    expect(warnings[0]).toMatchObject({ entry: '1-0', reason: 'not JSON' });
    expect(warnings[1]).toMatchObject({ entry: '1-1', reason: expect.stringContaining('checkpoint') });
  });

  it('shows commands that arrive during a wait to its watcher, which may drop them; the rest wait for the drain', async () => {
    const { commands, handled } = setup();
    const seen: string[] = [];
    await commands.watching(
      (c) => {
        seen.push(c.type);
        return c.type === 'trigger' ? 'drop' : 'queue';
      },
      async () => {
        commands.take([
          entry('2-0', { type: 'trigger', attempt: 2, checkpoint: 4, checkpointId: 10, kind: 'PERIODIC' }),
          entry('2-1', { type: 'stop', attempt: 2 }),
        ]);
      },
    );
    commands.take([entry('2-2', { type: 'cancel', attempt: 2 })]);
    expect(seen).toEqual(['trigger', 'stop']);
    await commands.drain();
    expect(handled.map((c) => c.type)).toEqual(['stop', 'cancel']);
  });

  it.each([
    ['1-1', '1-0', true],
    ['2-0', '1-9', true],
    ['10-0', '9-0', true],
    ['1-0', '1-0', false],
    ['1-0', '1-1', false],
  ])('isAfter(%s, %s) is %s', (a, b, after) => expect(isAfter(a, b)).toBe(after));

  it('gives the next entry id', () => expect(nextId('5-9')).toBe('5-10'));
});
