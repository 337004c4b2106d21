import { defineOperator, fieldName, duration, getField, listState, z, type ProcessContext } from '@keyflow/sdk';

const settings = z
  .object({
    threshold: z.number().int().min(1).max(1000).default(3).describe('Failures within the window that raise an alert'),
    within: duration({ min: 1 }).prefault('1m').describe('The window, e.g. 1m'),
    outcomeField: fieldName.default('outcome').describe('The field that says how a login went'),
    failureValue: z
      .union([z.string(), z.number(), z.boolean()])
      .default('failure')
      .describe('The value of that field for a failure; any other is a success'),
  })
  .strict();

const state = {
  /** The event times of the key's failures still within the window, oldest first. */
  failures: listState<number>(),
};

type Ctx = ProcessContext<z.output<typeof settings>, typeof state>;

/**
 * Keeps `failures` in state, and one event-time timer at the moment the newest leaves the window (when they all
 * have), which clears them: a user who stops failing holds no state.
 */
function keep(ctx: Ctx, before: readonly number[], failures: number[]) {
  const { within } = ctx.settings;
  const was = before.at(-1);
  const newest = failures.at(-1);
  if (was !== undefined && was !== newest) ctx.timers.deleteEventTime(was + within - 1);
  if (newest === undefined) return ctx.state.failures.clear();
  ctx.state.failures.update(failures);
  ctx.timers.registerEventTime(newest + within - 1);
}

/**
 * Fraud-style "3 failed logins within 1 minute" per key (user), on event time: emits `{key, failures, firstAt,
 * lastAt}` once the failures within `within` of the newest reach `threshold`, then counts afresh. A success clears
 * the failures before it; a failure whose window the watermark has passed goes to the late output.
 */
export default defineOperator({
  kind: 'failedLogins',
  title: 'Failed logins',
  description: 'Alerts when a key fails to log in threshold times within a window (event time)',
  settings,
  inputs: 'keyed',
  state,
  outputFields: () => ['key', 'failures', 'firstAt', 'lastAt'],
  process(record, ctx) {
    const { threshold, within, outcomeField, failureValue } = ctx.settings;
    const ts = ctx.timestamp;
    if (ts === undefined) return ctx.deadLetter(record, 'failedLogins: the record has no event time (give its source a timestamp field)');
    const outcome = getField(record, outcomeField);
    if (outcome === undefined) return ctx.deadLetter(record, `failedLogins: the record has no '${outcomeField}'`);
    const before = ctx.state.failures.get();
    if (outcome !== failureValue)
      return keep(
        ctx,
        before,
        before.filter((t) => t > ts),
      );
    if (ts + within - 1 <= ctx.watermark) return ctx.late(record, `failedLogins: the watermark passed the end of this failure's ${within} ms window`);

    const all = [...before, ts].sort((a, b) => a - b);
    const lastAt = all.at(-1)!;
    const inWindow = all.filter((t) => t > lastAt - within);
    if (inWindow.length < threshold) return keep(ctx, before, inWindow);
    ctx.emit({ key: ctx.currentKey, failures: inWindow.length, firstAt: inWindow[0], lastAt });
    keep(ctx, before, []);
  },
  onTimer(_ts, ctx) {
    // The newest failure has left the window, and all the older ones with it.
    ctx.state.failures.clear();
  },
});
