import { defineOperator, fieldName, duration, getField, isKey, mapState, z, type Key, type ProcessContext } from '@keyflow/sdk';

const settings = z
  .object({
    idField: fieldName.default('id').describe('The field that identifies a record'),
    ttl: duration({ min: 1 }).prefault('10m').describe('How long an id is remembered after its first sighting, e.g. 10m'),
    time: z.enum(['event', 'processing']).default('event').describe("event: the records' timestamps and the watermark; processing: the wall clock"),
  })
  .strict();

const state = {
  /** Ids seen, each with the time it is forgotten at. */
  seen: mapState<Key, number>(),
  /** The same ids by that time, so that a timer finds what it expires without a scan. */
  expiring: mapState<number, Key[]>(),
};

type Ctx = ProcessContext<z.output<typeof settings>, typeof state>;

/** Now, on the clock the settings chose; undefined: the record has no event time. */
const nowOf = (ctx: Ctx) => (ctx.settings.time === 'event' ? ctx.timestamp : ctx.timers.currentProcessingTime());

/**
 * Drops repeats per key: the first record with an id goes on unchanged, and a record whose id the same key had
 * within `ttl` before goes to the side output `duplicates`. An id is forgotten `ttl` after its first sighting, by
 * one timer per expiry time.
 */
export default defineOperator({
  kind: 'dedupe',
  title: 'Dedupe',
  description: 'Passes the first record per key and id within a TTL; repeats go to the duplicates output',
  settings,
  inputs: 'keyed',
  outputs: ['duplicates'],
  state,
  outputFields: (_settings, input) => input && [...input],
  process(record, ctx) {
    const { idField, ttl, time } = ctx.settings;
    const id = getField(record, idField);
    if (!isKey(id)) return ctx.deadLetter(record, `dedupe: the record has no id in '${idField}'`);
    const now = nowOf(ctx);
    if (now === undefined)
      return ctx.deadLetter(record, 'dedupe: the record has no event time (give its source a timestamp field, or use time: processing)');
    const expiresAt = ctx.state.seen.get(id);
    if (expiresAt !== undefined && now < expiresAt) return ctx.emitTo('duplicates', record);

    const at = now + ttl;
    ctx.state.seen.put(id, at);
    ctx.state.expiring.put(at, [...(ctx.state.expiring.get(at) ?? []), id]);
    if (time === 'event') ctx.timers.registerEventTime(at);
    else ctx.timers.registerProcessingTime(at);
    ctx.emit(record);
  },
  onTimer(at, ctx) {
    const { seen, expiring } = ctx.state;
    // An id seen again after it expired but before this timer fired has a later time now: it stays.
    for (const id of expiring.get(at) ?? []) if (seen.get(id) === at) seen.remove(id);
    expiring.remove(at);
    // A key that remembers nothing holds no state.
    if (seen.entries().next().done) seen.clear();
    if (expiring.entries().next().done) expiring.clear();
  },
});
