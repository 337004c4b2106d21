import { z } from 'zod';
import { duration } from './duration.ts';
import { NEXMARK_KIND_CHOICES, nexmarkFields, nexmarkKindsOf } from './nexmark.ts';
import { parseAggregates } from './windows.ts';
import type { OperatorDefinition } from './sdk/define.ts';

/** Where an operator sits in a pipeline: sources start it, sinks end it, keyed operators need a keyed input. */
export type OperatorKind = 'source' | 'transform' | 'keyed' | 'sink';

/** A record field's name (dots reach into nested objects): what operators' settings name fields with. */
export const fieldName = z
  .string()
  .min(1)
  .max(64)
  .regex(/^[A-Za-z_][\w.]*$/, 'a field name: letters, digits, _ and .');

/** The most distinct keys a generator may draw from (a deployment may allow fewer: KEYFLOW_MAX_GENERATOR_KEYS). */
export const MAX_GENERATOR_KEYS = 10_000_000;

/**
 * What every source says about event time (DESIGN §11): where a record's timestamp comes from, and how its
 * watermarks are made per split: bounded out-of-orderness, emitted periodically, with optional idleness.
 */
export const eventTimeSettings = {
  timestamps: z
    .enum(['field', 'ingestion'])
    .default('field')
    .describe("field: the record's timestamp field (ms since the epoch, or an ISO string); ingestion: when the source read it"),
  timestampField: fieldName.default('ts').describe('The field that holds the event time (with timestamps: field)'),
  watermarkDelay: duration().prefault('0ms').describe('Bounded out-of-orderness: the watermark trails the latest event time by this, e.g. 2s'),
  watermarkInterval: duration({ min: 10, max: 60_000 }).prefault('200ms').describe('How often watermarks are emitted'),
  idleTimeout: duration({ min: 1 }).optional().describe('A split without data for this long stops holding the watermark back; empty = never'),
};

/** A source's event-time settings alone, read from its settings (other keys are left aside). */
export const eventTimeSchema = z.object(eventTimeSettings);
export type EventTimeSettings = z.output<typeof eventTimeSchema>;

/**
 * A source vertex's event-time settings with its own defaults (a broker source defaults to ingestion time where
 * its messages carry no time of their own): its settings parsed by its type's schema, the event-time part taken.
 */
export function sourceEventTime(vertex: { type: string; settings?: unknown }): EventTimeSettings {
  const spec = operatorSpec(vertex.type);
  const parsed = (spec ? spec.settings.parse(vertex.settings ?? {}) : eventTimeSchema.parse(vertex.settings ?? {})) as EventTimeSettings;
  const { timestamps, timestampField, watermarkDelay, watermarkInterval, idleTimeout } = parsed;
  return { timestamps, timestampField, watermarkDelay, watermarkInterval, ...(idleTimeout !== undefined && { idleTimeout }) };
}

export const generatorSettings = z
  .object({
    seed: z.number().int().default(42).describe('Seed: the same seed gives the same events'),
    rate: z.number().min(0).max(10_000_000).default(1000).describe('Events per second in all; 0 = as fast as possible'),
    keys: z.number().int().min(1).max(MAX_GENERATOR_KEYS).default(1000).describe('Distinct users (key cardinality)'),
    skew: z.enum(['uniform', 'zipf']).default('uniform').describe('How keys are drawn'),
    zipfExponent: z.number().min(0.1).max(5).default(1).describe('Zipf exponent (with skew zipf)'),
    total: z.number().int().min(1).optional().describe('Events after which the source ends; empty = unbounded'),
    splits: z.number().int().min(1).max(1024).default(16).describe('Fixed splits; the most parallelism the source can have'),
    msPerEvent: z.number().min(0).max(86_400_000).default(1).describe('Event time between consecutive events, ms (0.01: a hundred per ms)'),
    outOfOrderness: duration().prefault('0ms').describe('Events come up to this much behind in event time, at random (seeded), e.g. 2s'),
    idleSplits: z.number().int().min(0).max(1024).default(0).describe('The last this many splits emit nothing (to see idleness)'),
    startAt: z.iso
      .datetime({ offset: true })
      .optional()
      .describe('Event time of the first event, ISO 8601 (e.g. 2026-11-29T10:00:00Z); empty: 2026-01-01T00:00:00Z'),
    lateEvery: z.number().int().min(0).default(0).describe('Every n-th event comes late by Late by (0: none), to see late records'),
    lateBy: duration().prefault('0ms').describe('How late those events are, e.g. 30s'),
    ...eventTimeSettings,
  })
  .strict()
  .refine((s) => s.idleSplits < s.splits, { message: 'at least one split must emit events', path: ['idleSplits'] });

const recordSize = (kind: string, avg: number) =>
  z
    .number()
    .int()
    .min(1)
    .max(100_000)
    .default(avg)
    .describe(`Average size of a ${kind}, bytes as Nexmark counts them (its extra field makes up the rest)`);
const hotRatio = (what: string, ratio: number) =>
  z.number().int().min(1).max(1000).default(ratio).describe(`${what}: all but 1 in this many (1: none)`);

export const nexmarkSettings = z
  .object({
    seed: z.number().int().default(1).describe('Seed: the same seed gives the same events (each drawn from its event id)'),
    rate: z.number().min(0).max(10_000_000).default(10_000).describe('Events per second emitted in all; 0 = as fast as possible'),
    eventsPerSecond: z
      .number()
      .positive()
      .max(1_000_000_000)
      .optional()
      .describe('Event-time rate: events per second of event time, skipped kinds included; empty = the rate (10,000,000 when the rate is 0)'),
    total: z.number().int().min(1).optional().describe('Events (of all kinds, skipped ones too) after which the source ends; empty = unbounded'),
    splits: z.number().int().min(1).max(1024).default(16).describe('Fixed splits; the most parallelism the source can have'),
    kinds: z.enum(NEXMARK_KIND_CHOICES).default('all').describe('Which events it emits; the others are skipped, their ids and times kept'),
    personAvgSize: recordSize('person', 200),
    auctionAvgSize: recordSize('auction', 500),
    bidAvgSize: recordSize('bid', 100),
    outOfOrderGroupSize: z
      .number()
      .int()
      .min(1)
      .max(1_000_000)
      .default(1)
      .describe('Events come shuffled, with their times, within groups of this many (1: in order)'),
    hotAuctionRatio: hotRatio('Bids on a hot auction', 2),
    hotBiddersRatio: hotRatio('Bids by a hot bidder', 4),
    hotSellersRatio: hotRatio('Auctions by a hot seller', 4),
    startAt: z.iso
      .datetime({ offset: true })
      .optional()
      .describe('Event time of the first event, ISO 8601 (e.g. 2026-11-29T10:00:00Z); empty: 2026-01-01T00:00:00Z'),
    ...eventTimeSettings,
    timestampField: eventTimeSettings.timestampField.default('dateTime'),
  })
  .strict();

/** Kinds of connection profiles (stored by the control plane, picked by connector settings). */
export const CONNECTION_KINDS = ['nats', 'redis', 'postgres', 'mqtt', 'http'] as const;
export type ConnectionKind = (typeof CONNECTION_KINDS)[number];

/** A connection profile's name, as connections are named: the builder offers those of `kind`. */
export const connectionName = z
  .string()
  .min(1)
  .max(64)
  .regex(/^[A-Za-z0-9][\w.-]*$/, 'a connection name: letters, digits, _, . and -');

/** A connector's connection setting: the name of a stored connection profile of `kind`. */
function connectionRef(kind: ConnectionKind) {
  return connectionName.meta({ format: 'connection', connectionKind: kind });
}

/** Names listed comma-separated (streams, subjects, topics): each one a split. */
function nameList(what: string, pattern: RegExp) {
  return z
    .string()
    .transform((t) => t.split(',').map((x) => x.trim()))
    .refine((xs) => xs.length >= 1 && xs.length <= 256 && xs.every((x) => pattern.test(x)), {
      message: `one or more ${what}, separated by commas`,
    })
    .refine((xs) => new Set(xs).size === xs.length, { message: `the same ${what.replace(/s$/, '')} is listed twice` });
}

/** How a message's bytes become a record. */
const messageFormat = z
  .enum(['json', 'text'])
  .default('json')
  .describe('json: each message is a JSON object (anything else is dead-lettered); text: {value: <the text>}');

/** Where a source starts when a job has no checkpoint to resume from. */
const startFrom = z
  .enum(['earliest', 'latest'])
  .default('earliest')
  .describe('Where a new job starts reading (a recovered or rescaled one resumes where it was): earliest or latest');

/** A sink that can make its output visible only with the checkpoint that covers it, or sooner and at least once. */
const deliverySetting = z
  .enum(['exactly-once', 'at-least-once'])
  .default('exactly-once')
  .describe('exactly-once: published when a checkpoint completes; at-least-once: sooner, but a recovery publishes again');

export const natsSourceSettings = z
  .object({
    connection: connectionRef('nats').describe('A NATS connection'),
    stream: z
      .string()
      .regex(/^[^\s.*>]{1,255}$/, 'a JetStream stream name')
      .describe('The JetStream stream to read'),
    subjects: nameList('subject filters', /^[^\s]{1,255}$/)
      .optional()
      .describe('Subject filters, comma-separated; each one is a split (e.g. orders.0, orders.1); empty = the whole stream as one'),
    format: messageFormat,
    start: startFrom,
    ...eventTimeSettings,
  })
  .strict();

export const natsSinkSettings = z
  .object({
    connection: connectionRef('nats').describe('A NATS connection'),
    subject: z
      .string()
      .regex(/^[^\s*>]{1,255}$/, 'a subject without wildcards')
      .describe('The subject to publish to (a stream must capture it)'),
    delivery: deliverySetting,
  })
  .strict();

const redisKey = /^[^\s]{1,512}$/;

export const redisStreamSourceSettings = z
  .object({
    connection: connectionRef('redis').optional().describe("A Redis connection; empty = Keyflow's own Redis"),
    streams: nameList('stream keys', redisKey).describe('Stream keys, comma-separated; each one is a split'),
    field: z.string().min(1).max(128).default('data').describe('The entry field that holds the message'),
    format: messageFormat,
    start: startFrom,
    ...eventTimeSettings,
  })
  .strict();

export const redisStreamSinkSettings = z
  .object({
    connection: connectionRef('redis').optional().describe("A Redis connection; empty = Keyflow's own Redis"),
    stream: z.string().regex(redisKey, 'a Redis key').describe('The stream key to XADD to'),
    field: z.string().min(1).max(128).default('data').describe('The entry field the record (as JSON) goes in'),
    maxLen: z.number().int().min(0).default(0).describe('Trims the stream to about this many entries (0: never)'),
    delivery: deliverySetting,
  })
  .strict();

export const httpSourceSettings = z
  .object({
    name: z
      .string()
      .regex(/^[a-z0-9][a-z0-9_-]{0,62}$/, 'lower-case letters, digits, _ and -')
      .describe('Records POSTed to /api/ingest/<name> come in here'),
    partitions: z.number().int().min(1).max(64).default(4).describe('Partitions of the ingest log: the most parallelism the source can have'),
    partitionKey: fieldName.optional().describe('Records with the same value of this field go to the same partition; empty = spread'),
    maxBacklog: z.number().int().min(1).max(100_000_000).default(1_000_000).describe('Records waiting at most: ingest answers 429 above'),
    ...eventTimeSettings,
    timestamps: eventTimeSettings.timestamps.default('ingestion'),
  })
  .strict();

export const webhookSinkSettings = z
  .object({
    connection: connectionRef('http').describe('An HTTP connection: its URL gets the POSTs'),
    batchSize: z.number().int().min(1).max(10_000).default(500).describe('Records per POST at most'),
    maxRetries: z.number().int().min(0).max(20).default(5).describe('Retries of a failed POST, with backoff, before the subtask fails'),
    timeout: duration({ min: 100, max: 300_000 }).prefault('10s').describe('How long one POST may take'),
  })
  .strict();

export const postgresCdcSettings = z
  .object({
    connection: connectionRef('postgres').describe('A Postgres connection (its user needs the REPLICATION attribute)'),
    publication: z
      .string()
      .regex(/^[a-z_][a-z0-9_]{0,62}$/, 'a publication name')
      .describe('The publication whose tables are read'),
    slot: z
      .string()
      .regex(/^[a-z0-9_]{1,63}$/, 'a slot name: lower-case letters, digits and _')
      .describe('The logical replication slot (created with pgoutput if missing)'),
    ...eventTimeSettings,
    timestamps: eventTimeSettings.timestamps.default('ingestion'),
  })
  .strict();

export const mqttSourceSettings = z
  .object({
    connection: connectionRef('mqtt').describe('An MQTT connection'),
    topics: nameList('topic filters', /^[^\s]{1,255}$/).describe('Topic filters, comma-separated; each one is a split with its own session'),
    format: messageFormat,
    ...eventTimeSettings,
    timestamps: eventTimeSettings.timestamps.default('ingestion'),
  })
  .strict();

const filterOp = z.enum(['eq', 'neq', 'gt', 'gte', 'lt', 'lte', 'contains', 'exists', 'in', 'multipleOf']);
export const filterSettings = z
  .object({
    field: fieldName,
    op: filterOp
      .default('eq')
      .describe('in: the value is one of a comma-separated list (e.g. OR, ID, CA); multipleOf: a number divisible by the value'),
    value: z.union([z.string(), z.number(), z.boolean()]).optional(),
    valueField: fieldName.optional().describe('Compares with this field of the same record instead of a value, e.g. left.expires'),
  })
  .strict()
  .refine((s) => s.op === 'exists' || s.value !== undefined || s.valueField !== undefined, {
    message: 'a value (or a field to compare with) is needed for this comparison',
    path: ['value'],
  })
  .refine((s) => s.value === undefined || s.valueField === undefined, {
    message: 'give a value or a field to compare with, not both',
    path: ['valueField'],
  })
  .refine((s) => s.valueField === undefined || (s.op !== 'in' && s.op !== 'exists'), {
    message: 'in and exists take no field to compare with',
    path: ['valueField'],
  })
  .refine((s) => s.op !== 'multipleOf' || s.valueField !== undefined || (typeof s.value === 'number' && Number.isInteger(s.value) && s.value !== 0), {
    message: 'multipleOf needs a whole number other than 0',
    path: ['value'],
  })
  .refine((s) => s.op !== 'in' || s.valueField !== undefined || (typeof s.value === 'string' && s.value.split(',').some((x) => x.trim() !== '')), {
    message: 'in needs a comma-separated list of values',
    path: ['value'],
  });

const mapStep = z.discriminatedUnion('op', [
  z.object({ op: z.literal('pick'), fields: z.array(fieldName).min(1) }).strict(),
  z.object({ op: z.literal('drop'), fields: z.array(fieldName).min(1) }).strict(),
  z.object({ op: z.literal('rename'), from: fieldName, to: fieldName }).strict(),
  z.object({ op: z.literal('set'), field: fieldName, value: z.union([z.string(), z.number(), z.boolean(), z.null()]) }).strict(),
  z.object({ op: z.literal('scale'), field: fieldName, factor: z.number() }).strict(),
]);
export const mapSettings = z.object({ steps: z.array(mapStep).min(1).max(50) }).strict();

export const countSettings = z.object({}).strict();
export const aggregateSettings = z
  .object({
    aggregates: z
      .string()
      .default('count')
      .refine((t) => parseAggregates(t).ok, { error: (iss) => (parseAggregates(String(iss.input)) as { message: string }).message })
      .describe('Comma-separated: count, sum(f), min(f), max(f), avg(f), maxBy(f), minBy(f); each may end in "as name"'),
    upsertKey: fieldName
      .optional()
      .describe(
        'Reads records as updates: one replaces the last with the same value of this field (within the key), as over a changelog. E.g. each auction’s highest bid, averaged per category',
      ),
  })
  .strict();
export const sumSettings = z.object({ field: fieldName.describe('Numeric field to add up') }).strict();
export const statefulCounterSettings = z
  .object({ field: fieldName.optional().describe('Field shown as the value; empty = the whole record') })
  .strict();

export const windowSettings = z
  .object({
    assigner: z
      .enum(['tumbling', 'sliding', 'session'])
      .default('tumbling')
      .describe('tumbling: back to back; sliding: overlapping, one every slide; session: per key, closed by a gap'),
    size: duration({ min: 1 }).prefault('1m').describe('Window length (tumbling, sliding), e.g. 10s'),
    slide: duration({ min: 1 }).optional().describe('A new window every… (sliding), e.g. 2s'),
    gap: duration({ min: 1 }).optional().describe('A session ends once this long passes without records (session), e.g. 30s'),
    offset: duration({ signed: true }).prefault('0ms').describe('Shifts window starts, e.g. -8h for days that start at midnight in UTC+8'),
    time: z.enum(['event', 'processing']).default('event').describe("event: the records' timestamps and watermarks; processing: the wall clock"),
    aggregates: z
      .string()
      .default('count')
      .refine((t) => parseAggregates(t).ok, { error: (iss) => (parseAggregates(String(iss.input)) as { message: string }).message })
      .describe('Comma-separated: count, sum(f), min(f), max(f), avg(f), maxBy(f), minBy(f); each may end in "as name"'),
    allowedLateness: duration().prefault('0ms').describe('How long after firing a window still takes late records (and emits again)'),
  })
  .strict()
  .refine((s) => s.assigner !== 'sliding' || s.slide !== undefined, { message: 'a sliding window needs a slide', path: ['slide'] })
  .refine((s) => s.assigner !== 'sliding' || s.slide === undefined || s.slide <= s.size, {
    message: 'the slide may not be longer than the window',
    path: ['slide'],
  })
  .refine((s) => s.assigner !== 'session' || s.gap !== undefined, { message: 'a session window needs a gap', path: ['gap'] });

export const windowJoinSettings = z
  .object({
    assigner: z.enum(['tumbling', 'sliding']).default('tumbling').describe('tumbling: back to back; sliding: overlapping, one every slide'),
    size: duration({ min: 1 }).prefault('10s').describe('Window length, e.g. 10s'),
    slide: duration({ min: 1 }).optional().describe('A new window every… (sliding), e.g. 2s'),
    offset: duration({ signed: true }).prefault('0ms').describe('Shifts window starts'),
  })
  .strict()
  .refine((s) => s.assigner !== 'sliding' || s.slide !== undefined, { message: 'a sliding window needs a slide', path: ['slide'] })
  .refine((s) => s.assigner !== 'sliding' || s.slide === undefined || s.slide <= s.size, {
    message: 'the slide may not be longer than the window',
    path: ['slide'],
  });

export const intervalJoinSettings = z
  .object({
    lower: duration({ signed: true }).prefault('0ms').describe("A right record joins a left one from left's time + this, e.g. -5s"),
    upper: duration({ signed: true }).prefault('10s').describe("…up to left's time + this, e.g. 10s"),
  })
  .strict()
  .refine((s) => s.lower <= s.upper, { message: 'the lower bound may not be above the upper one', path: ['lower'] });

export const joinSettings = z
  .object({
    retain: duration({ min: 1 })
      .optional()
      .describe('How long after its event time a record can still find partners, e.g. 1h; empty = for ever (state grows with the keys)'),
  })
  .strict();

export const blackholeSinkSettings = z.object({}).strict();

export const logSinkSettings = z
  .object({ sampleSize: z.number().int().min(1).max(1000).default(100).describe('Latest records kept readable') })
  .strict();

/** Table names that belong to Keyflow (its sinks' bookkeeping, keyflow_*), Prisma (_prisma*) or Postgres (pg_*). */
const RESERVED_TABLE = /^(keyflow_|_prisma|pg_)/i;

export const postgresSinkSettings = z
  .object({
    table: z
      .string()
      .refine((t) => !t.includes('.'), {
        error: (iss) => `'${String(iss.input)}' names a schema: a sink's table is a plain name, created in the sinks' own schema`,
        abort: true,
      })
      .refine((t) => !RESERVED_TABLE.test(t), {
        error: (iss) => `'${String(iss.input)}' is reserved: table names starting with keyflow_, _prisma or pg_ belong to Keyflow and Postgres`,
        abort: true,
      })
      .regex(/^[a-z_][a-z0-9_]{0,62}$/, 'a lower-case SQL identifier (letters, digits, _)')
      .describe('Table to upsert into; created if missing'),
    keyField: z
      .string()
      .regex(/^[A-Za-z_][\w.]*(\s*,\s*[A-Za-z_][\w.]*)*$/, 'a field name, or several separated by commas')
      .default('key')
      .describe("Field that is the primary key; several separated by commas make one key (e.g. 'key, windowStart')"),
    valueField: fieldName.optional().describe('Field stored as the value; empty = the whole record'),
    delivery: z
      .enum(['exactly-once', 'at-least-once'])
      .default('exactly-once')
      .describe('exactly-once: rows change only when a checkpoint completes; at-least-once: sooner, but a recovery rewrites'),
    flushIntervalMs: z.number().int().min(50).max(60_000).default(1000).describe('at-least-once: upsert the latest values this often'),
  })
  .strict();

/** A sink's delivery guarantee (DESIGN §8). */
export type Delivery = 'exactly-once' | 'at-least-once';

/** What a sink vertex guarantees; undefined for operators that are no sink. */
export function sinkDelivery(vertex: { type: string; settings?: unknown }): Delivery | undefined {
  const schema = { postgres: postgresSinkSettings, natsSink: natsSinkSettings, redisStreamSink: redisStreamSinkSettings }[vertex.type];
  if (schema) {
    const s = schema.safeParse(vertex.settings ?? {});
    return s.success ? s.data.delivery : 'exactly-once';
  }
  return operatorSpec(vertex.type)?.kind === 'sink' ? 'at-least-once' : undefined;
}

export interface OperatorSpec {
  type: string;
  kind: OperatorKind;
  label: string;
  description: string;
  settings: z.ZodType;
  /** Two keyed inputs, `left` and `right` (a join); otherwise any number of inputs, all alike. */
  twoInputs?: boolean;
  /** A source's fixed splits, given its settings: the most subtasks it can run (undefined: settings that do not parse). */
  splits?(settings: unknown): number | undefined;
  /** The fields of the records it emits, given its settings and its input records' fields (undefined: unknown). */
  outputFields(settings: unknown, input: readonly string[] | undefined): string[] | undefined;
  /**
   * The fields of its input records it reads besides its key, given its settings, for an operator none of whose
   * outputs (nor its dead letters beyond those fields) ever carries an input record as it came: the engine then sends
   * only these and the key over the channels into it (projection push-down, as Flink's planner does). Undefined (the
   * default, and always for user operators): it gets whole records.
   */
  inputFields?(settings: unknown): readonly string[] | undefined;
  /** Side outputs besides its main one, by name: edges may be drawn from each. */
  outputs?: readonly string[];
  /** A user operator (from KEYFLOW_OPERATORS): its version, `<type>@<content hash>`; built-ins have none. */
  version?: string;
  /**
   * A source whose records' event times, with these settings, run on a clock of their own (generated events: from a
   * fixed start, as fast as the rate goes) rather than the wall clock's: how far a watermark trails the wall clock
   * means nothing downstream of it.
   */
  ownClock?(settings: unknown): boolean;
}

/**
 * Whether a generated source's event time, with these settings, is a clock of its own: its records take their time
 * from their own field (the default, not ingestion) and that time does not follow the wall clock — it starts at the
 * fixed default (no `startAt`; a template stamps the time it was opened), or it runs at another pace than the wall
 * clock (`pace`: event-time ms per wall-clock second at the rate set; 0 or unbounded runs as fast as it can).
 */
const generatedClock =
  <T extends EventTimeSettings & { startAt?: string; rate: number }>(schema: z.ZodType<T>, pace: (settings: T) => number) =>
  (settings: unknown) => {
    const parsed = schema.safeParse(settings ?? {});
    if (!parsed.success || parsed.data.timestamps !== 'field') return false;
    return parsed.data.startAt === undefined || parsed.data.rate === 0 || Math.abs(pace(parsed.data) - 1000) > 1e-6;
  };

/** The fields of a generator event (`GeneratorEvent`). */
export const GENERATOR_FIELDS: readonly string[] = ['user', 'item', 'amount', 'ts'];

/** The fields a map's steps leave, as its operator applies them; steps that do not parse yet are taken to pass all through. */
function mapOutputFields(settings: unknown, input: readonly string[] | undefined): string[] | undefined {
  if (!input) return undefined;
  const parsed = mapSettings.safeParse(settings ?? {});
  if (!parsed.success) return [...input];
  return parsed.data.steps.reduce<string[]>(
    (fields, step) => {
      switch (step.op) {
        case 'pick':
          return step.fields.filter((f) => fields.includes(f));
        case 'drop':
          return fields.filter((f) => !step.fields.includes(f));
        case 'rename':
          return fields.includes(step.from) ? [...fields.filter((f) => f !== step.from && f !== step.to), step.to] : fields;
        case 'set':
          return fields.includes(step.field) ? fields : [...fields, step.field];
        case 'scale':
          return fields;
      }
    },
    [...input],
  );
}

const passThrough = (_settings: unknown, input: readonly string[] | undefined) => input && [...input];
const nothing = () => [];
/** A source whose records are what its messages hold: their fields are not known before they come. */
const unknownFields = () => undefined;

/** Every operator a pipeline may use, by type: the builder's palette and the validator read this one list. */
export const operatorCatalog = {
  generator: {
    type: 'generator',
    kind: 'source',
    splits: (settings) => {
      const parsed = generatorSettings.safeParse(settings ?? {});
      return parsed.success ? parsed.data.splits : undefined;
    },
    label: 'Generator',
    description: 'Deterministic events {user, item, amount, ts} from a seed',
    settings: generatorSettings,
    outputFields: () => [...GENERATOR_FIELDS],
    ownClock: generatedClock(generatorSettings, (s) => s.rate * s.msPerEvent),
  },
  nexmark: {
    type: 'nexmark',
    kind: 'source',
    splits: (settings) => {
      const parsed = nexmarkSettings.safeParse(settings ?? {});
      return parsed.success ? parsed.data.splits : undefined;
    },
    label: 'Nexmark',
    description: "The Nexmark benchmark's persons, auctions and bids (seeded per event id): {type, …}",
    settings: nexmarkSettings,
    outputFields: (settings) => {
      const parsed = nexmarkSettings.safeParse(settings ?? {});
      return parsed.success ? nexmarkFields(nexmarkKindsOf(parsed.data.kinds)) : undefined;
    },
    ownClock: generatedClock(nexmarkSettings, (s) => (1000 * s.rate) / (s.eventsPerSecond ?? s.rate)),
  },
  nats: {
    type: 'nats',
    kind: 'source',
    splits: (settings) => {
      const parsed = natsSourceSettings.safeParse(settings ?? {});
      return parsed.success ? (parsed.data.subjects?.length ?? 1) : undefined;
    },
    label: 'NATS JetStream',
    description: 'Messages of a JetStream stream; the stream sequence per split is checkpointed (exactly-once)',
    settings: natsSourceSettings,
    outputFields: unknownFields,
  },
  redisStream: {
    type: 'redisStream',
    kind: 'source',
    splits: (settings) => {
      const parsed = redisStreamSourceSettings.safeParse(settings ?? {});
      return parsed.success ? parsed.data.streams.length : undefined;
    },
    label: 'Redis Streams',
    description: 'Entries of Redis streams, one split per key; the last entry id is checkpointed (exactly-once)',
    settings: redisStreamSourceSettings,
    outputFields: unknownFields,
  },
  http: {
    type: 'http',
    kind: 'source',
    splits: (settings) => {
      const parsed = httpSourceSettings.safeParse(settings ?? {});
      return parsed.success ? parsed.data.partitions : undefined;
    },
    label: 'HTTP ingest',
    description: 'Records POSTed to /api/ingest/<name>, kept in a durable log until checkpointed (exactly-once)',
    settings: httpSourceSettings,
    outputFields: unknownFields,
  },
  postgresCdc: {
    type: 'postgresCdc',
    kind: 'source',
    splits: (settings) => {
      const parsed = postgresCdcSettings.safeParse(settings ?? {});
      return parsed.success ? 1 : undefined;
    },
    label: 'Postgres changes',
    description: 'Inserts, updates and deletes of a publication (pgoutput): {op, table, new, old, lsn}; acknowledged after each checkpoint',
    settings: postgresCdcSettings,
    outputFields: () => ['op', 'schema', 'table', 'new', 'old', 'lsn', 'ts'],
  },
  mqtt: {
    type: 'mqtt',
    kind: 'source',
    splits: (settings) => {
      const parsed = mqttSourceSettings.safeParse(settings ?? {});
      return parsed.success ? parsed.data.topics.length : undefined;
    },
    label: 'MQTT',
    description: 'QoS 1 messages of topic filters, acknowledged after each checkpoint: at least once (duplicates possible)',
    settings: mqttSourceSettings,
    outputFields: unknownFields,
  },
  filter: {
    type: 'filter',
    kind: 'transform',
    label: 'Filter',
    description: 'Keeps records whose field matches',
    settings: filterSettings,
    outputFields: passThrough,
  },
  map: {
    type: 'map',
    kind: 'transform',
    label: 'Map',
    description: 'Picks, drops, renames, sets or scales fields',
    settings: mapSettings,
    outputFields: mapOutputFields,
  },
  count: {
    type: 'count',
    kind: 'keyed',
    label: 'Count',
    description: 'Running count per key: {key, count}',
    settings: countSettings,
    outputFields: () => ['key', 'count'],
    inputFields: () => [],
  },
  sum: {
    type: 'sum',
    kind: 'keyed',
    label: 'Sum',
    description: 'Running sum of a field per key: {key, sum}',
    settings: sumSettings,
    outputFields: () => ['key', 'sum'],
    inputFields: (settings) => {
      const parsed = sumSettings.safeParse(settings ?? {});
      return parsed.success ? [parsed.data.field] : undefined;
    },
  },
  aggregate: {
    type: 'aggregate',
    kind: 'keyed',
    label: 'Aggregate',
    description: 'Running count, sum, min, max, avg, maxBy or minBy per key, with no window, out whenever they change: {key, …}',
    settings: aggregateSettings,
    outputFields: (settings) => {
      const parsed = parseAggregates(aggregateSettings.safeParse(settings ?? {}).data?.aggregates ?? 'count');
      return ['key', ...(parsed.ok ? parsed.aggregates.map((a) => a.name) : [])];
    },
  },
  statefulCounter: {
    type: 'statefulCounter',
    kind: 'keyed',
    label: 'Stateful counter',
    description: "Emits 'Processed: <value>, Count: <n>' per key from a value state",
    settings: statefulCounterSettings,
    outputFields: () => ['key', 'count', 'message'],
  },
  window: {
    type: 'window',
    kind: 'keyed',
    label: 'Window',
    description: 'Tumbling, sliding or session windows per key with count, sum, min, max, avg: {key, windowStart, windowEnd, …}',
    settings: windowSettings,
    outputFields: (settings) => {
      const parsed = parseAggregates(windowSettings.safeParse(settings ?? {}).data?.aggregates ?? 'count');
      return ['key', 'windowStart', 'windowEnd', ...(parsed.ok ? parsed.aggregates.map((a) => a.name) : [])];
    },
  },
  windowJoin: {
    type: 'windowJoin',
    kind: 'keyed',
    twoInputs: true,
    label: 'Window join',
    description: 'Pairs left and right records of a key in the same window, when it fires: {key, windowStart, windowEnd, left, right}',
    settings: windowJoinSettings,
    outputFields: () => ['key', 'windowStart', 'windowEnd', 'left', 'right'],
  },
  intervalJoin: {
    type: 'intervalJoin',
    kind: 'keyed',
    twoInputs: true,
    label: 'Interval join',
    description: "Pairs a left record with each right record of its key within [left's time + lower, + upper]: {key, left, right}",
    settings: intervalJoinSettings,
    outputFields: () => ['key', 'left', 'right'],
  },
  join: {
    type: 'join',
    kind: 'keyed',
    twoInputs: true,
    label: 'Join',
    description: 'Pairs each record with every record of the other side with the same key, as either arrives (a regular join): {key, left, right}',
    settings: joinSettings,
    outputFields: () => ['key', 'left', 'right'],
  },
  log: {
    type: 'log',
    kind: 'sink',
    label: 'Log',
    description: 'Keeps a sample of the latest records',
    settings: logSinkSettings,
    outputFields: nothing,
  },
  natsSink: {
    type: 'natsSink',
    kind: 'sink',
    label: 'NATS JetStream',
    description: "Publishes records as JSON; exactly-once through JetStream's duplicate window",
    settings: natsSinkSettings,
    outputFields: nothing,
  },
  redisStreamSink: {
    type: 'redisStreamSink',
    kind: 'sink',
    label: 'Redis Streams',
    description: 'XADDs records as JSON; exactly-once (at checkpoint completion) or at least once',
    settings: redisStreamSinkSettings,
    outputFields: nothing,
  },
  webhook: {
    type: 'webhook',
    kind: 'sink',
    label: 'Webhook',
    description: 'POSTs batches of records as JSON, with retries and an idempotency key per batch: at least once',
    settings: webhookSinkSettings,
    outputFields: nothing,
  },
  blackhole: {
    type: 'blackhole',
    kind: 'sink',
    label: 'Blackhole',
    description: 'Takes every record and keeps none: only its counts show (for benchmarks and for trying a pipeline out)',
    settings: blackholeSinkSettings,
    outputFields: nothing,
  },
  postgres: {
    type: 'postgres',
    kind: 'sink',
    label: 'Postgres',
    description: 'Upserts the latest value per key into a table, exactly-once by default',
    settings: postgresSinkSettings,
    outputFields: nothing,
  },
} as const satisfies Record<string, OperatorSpec>;

export type OperatorType = keyof typeof operatorCatalog;

/** User operators by type: what KEYFLOW_OPERATORS loaded (workers, control plane) or the control plane lists (dashboard). */
const userSpecs = new Map<string, OperatorSpec & { version: string }>();
const userDefinitions = new Map<string, OperatorDefinition>();

export function operatorSpec(type: string): OperatorSpec | undefined {
  return Object.hasOwn(operatorCatalog, type) ? operatorCatalog[type as OperatorType] : userSpecs.get(type);
}

/**
 * The vertices whose event time is a generated source's own clock: every source upstream of them (at least one) is
 * one whose `ownClock` holds with its settings. A watermark's lag behind the wall clock means nothing there.
 */
export function ownClockVertices(graph: {
  vertices: readonly { id: string; type: string; settings?: unknown }[];
  edges: readonly { from: string; to: string }[];
}): Set<string> {
  const inputs = new Map<string, string[]>();
  for (const e of graph.edges) inputs.set(e.to, [...(inputs.get(e.to) ?? []), e.from]);
  const byId = new Map(graph.vertices.map((v) => [v.id, v]));
  const memo = new Map<string, boolean>();
  const own = (id: string): boolean => {
    const known = memo.get(id);
    if (known !== undefined) return known;
    memo.set(id, false); // a cycle (an invalid graph) counts as the wall clock's
    const v = byId.get(id);
    const from = inputs.get(id) ?? [];
    const result = !v ? false : from.length ? from.every(own) : (operatorSpec(v.type)?.ownClock?.(v.settings) ?? false);
    memo.set(id, result);
    return result;
  };
  return new Set(graph.vertices.filter((v) => own(v.id)).map((v) => v.id));
}

/** The catalog entry of an SDK operator. */
export function specOfDefinition(def: OperatorDefinition, version: string): OperatorSpec & { version: string } {
  return {
    type: def.kind,
    kind: def.inputs === 'keyed' ? 'keyed' : 'transform',
    label: def.title,
    description: def.description,
    settings: def.settings,
    ...(def.twoInputs && { twoInputs: true }),
    ...(def.outputs?.length && { outputs: [...def.outputs] }),
    outputFields:
      def.outputFields ?? ((_settings: unknown, input: readonly string[] | undefined) => (def.inputs === 'any' ? input && [...input] : undefined)),
    version,
  };
}

/**
 * Adds a user operator to the catalog under its type; the same type again replaces it (a dashboard that lists the
 * catalog anew). A built-in's type is refused.
 */
export function registerOperatorSpec(spec: OperatorSpec & { version: string }): void {
  if (Object.hasOwn(operatorCatalog, spec.type)) throw new Error(`operator '${spec.type}' is a built-in: give yours another kind`);
  userSpecs.set(spec.type, spec);
}

/** Adds an SDK operator and its code (what a worker runs) to the catalog, at `version`. */
export function registerOperator(def: OperatorDefinition, version: string): void {
  registerOperatorSpec(specOfDefinition(def, version));
  userDefinitions.set(def.kind, def);
}

/** The user operators in the catalog, in the order they came. */
export function userOperatorSpecs(): (OperatorSpec & { version: string })[] {
  return [...userSpecs.values()];
}

/** A user operator's code, if this process loaded it. */
export function userOperatorDefinition(type: string): OperatorDefinition | undefined {
  return userDefinitions.get(type);
}

/** Forgets every user operator (tests; a dashboard about to list them anew). */
export function clearUserOperators(): void {
  userSpecs.clear();
  userDefinitions.clear();
}

export type GeneratorSettings = z.output<typeof generatorSettings>;
export type NexmarkSettings = z.output<typeof nexmarkSettings>;
export type FilterSettings = z.output<typeof filterSettings>;
export type MapSettings = z.output<typeof mapSettings>;
export type SumSettings = z.output<typeof sumSettings>;
export type AggregateSettings = z.output<typeof aggregateSettings>;
export type StatefulCounterSettings = z.output<typeof statefulCounterSettings>;
export type WindowSettings = z.output<typeof windowSettings>;
export type WindowJoinSettings = z.output<typeof windowJoinSettings>;
export type IntervalJoinSettings = z.output<typeof intervalJoinSettings>;
export type JoinSettings = z.output<typeof joinSettings>;
export type LogSinkSettings = z.output<typeof logSinkSettings>;
export type PostgresSinkSettings = z.output<typeof postgresSinkSettings>;
export type NatsSourceSettings = z.output<typeof natsSourceSettings>;
export type NatsSinkSettings = z.output<typeof natsSinkSettings>;
export type RedisStreamSourceSettings = z.output<typeof redisStreamSourceSettings>;
export type RedisStreamSinkSettings = z.output<typeof redisStreamSinkSettings>;
export type HttpSourceSettings = z.output<typeof httpSourceSettings>;
export type WebhookSinkSettings = z.output<typeof webhookSinkSettings>;
export type PostgresCdcSettings = z.output<typeof postgresCdcSettings>;
export type MqttSourceSettings = z.output<typeof mqttSourceSettings>;
