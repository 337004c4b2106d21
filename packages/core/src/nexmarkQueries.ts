import type { GraphInput } from './graph.ts';

/**
 * The Nexmark queries (as nexmark-flink states them in SQL) drawn with Keyflow's own operators: the `nexmark` source,
 * filters, maps, windows and joins. One definition serves the builder's templates, the tests that check each
 * query's results and `npm run bench:nexmark`.
 */
export const NEXMARK_QUERIES = ['q0', 'q1', 'q2', 'q3', 'q4', 'q5', 'q7', 'q8', 'q11', 'q12'] as const;
export type NexmarkQuery = (typeof NEXMARK_QUERIES)[number];

export const nexmarkQueryInfo: Record<NexmarkQuery, { title: string; description: string }> = {
  q0: { title: 'pass-through', description: 'Every bid straight to the sink: the cost of reading and moving events.' },
  q1: { title: 'currency conversion', description: 'Every bid with its price in euros (× 0.908).' },
  q2: { title: 'selection', description: 'The bids on every 123rd auction: auction and price.' },
  q3: {
    title: 'local item suggestion',
    description: 'Auctions of category 10 joined to their sellers from Oregon, Idaho or California (a regular join keyed by person id).',
  },
  q4: {
    title: 'average price per category',
    description:
      "Each auction's highest bid while it was open (a join of auctions and bids cut to the fields it reads, two filters and a running maxBy), averaged per category over every auction's latest highest bid.",
  },
  q5: {
    title: 'hot items',
    description: 'Bids counted per auction in 10 s windows sliding every 2 s; per window, the auction with the most bids.',
  },
  q7: { title: 'highest bid', description: 'The highest bid of every 10 s tumbling window (the greatest per auction, then overall).' },
  q8: {
    title: 'new users',
    description: 'People who created an auction within the same 10 s tumbling window they registered in (a window join).',
  },
  q11: { title: 'user sessions', description: "Each bidder's bids counted per session, a session ending after 10 s without a bid." },
  q12: { title: 'processing-time windows', description: 'Bids counted per bidder in 10 s tumbling windows of processing time.' },
};

export interface NexmarkQueryOptions {
  /** Every operator's parallelism (default 2). */
  parallelism?: number;
  /** Settings of the `nexmark` source(s) over the defaults (seed 1, 10,000 events/s, 16 splits). */
  source?: Record<string, unknown>;
  /** Where results go: `blackhole` (counts only) or Postgres tables named `<table>` (default: q0–q2 blackhole, the rest Postgres). */
  sink?: 'blackhole' | 'postgres';
  /** The Postgres table (default `nexmark_<query>`). */
  table?: string;
}

/** What each query's result rows are keyed by in Postgres (the fields of its last operator's records). */
const POSTGRES_KEYS: Record<NexmarkQuery, { keyField: string; valueField?: string }> = {
  // A bid has no id of its own: these fields together tell bids apart (extra is random padding).
  q0: { keyField: 'auction, bidder, dateTime, extra', valueField: 'price' },
  q1: { keyField: 'auction, bidder, dateTime, extra', valueField: 'price' },
  q2: { keyField: 'auction, price', valueField: 'price' },
  q3: { keyField: 'left.id' },
  q4: { keyField: 'key', valueField: 'avgPrice' },
  q5: { keyField: 'key' },
  q7: { keyField: 'key' },
  q8: { keyField: 'key, windowStart', valueField: 'left.name' },
  q11: { keyField: 'key, windowStart', valueField: 'count' },
  q12: { keyField: 'key, windowStart', valueField: 'count' },
};

/** The pipeline of a Nexmark query. */
export function nexmarkQuery(query: NexmarkQuery, options: NexmarkQueryOptions = {}): GraphInput {
  const p = options.parallelism ?? 2;
  const sink = options.sink ?? (['q0', 'q1', 'q2'].includes(query) ? 'blackhole' : 'postgres');
  // One source per query, as in Flink's: a join's two sides come from one stream of events, in step.
  const source = (id: string, kinds: string, y = 0) => ({
    id,
    type: 'nexmark',
    name: kinds === 'bid' ? 'Bids' : `Nexmark (${kinds.replace(',', ', ')})`,
    parallelism: p,
    settings: { seed: 1, rate: 10_000, splits: 16, ...options.source, kinds },
    position: { x: 0, y },
  });
  const op = (id: string, type: string, name: string, settings: Record<string, unknown>, x: number, y = 0) => ({
    id,
    type,
    name,
    parallelism: p,
    settings,
    position: { x, y },
  });
  const results = (x: number) =>
    sink === 'blackhole'
      ? { id: 'results', type: 'blackhole', name: 'Blackhole', parallelism: p, settings: {}, position: { x, y: 0 } }
      : {
          id: 'results',
          type: 'postgres',
          name: options.table ?? `nexmark_${query}`,
          parallelism: p,
          settings: { table: options.table ?? `nexmark_${query}`, ...POSTGRES_KEYS[query] },
          position: { x, y: 0 },
        };
  const forward = (from: string, to: string) => ({ from, to, partitioning: 'forward' as const });
  const hash = (from: string, to: string, key: string, side?: 'left' | 'right') => ({
    from,
    to,
    partitioning: 'hash' as const,
    key,
    ...(side && { side }),
  });

  // How long an auction stays open at most, in event time: the reference gives it up to twice the time 100 in-flight
  // auctions take to be created (100 × 50 / 3 events). q4's join keeps records twice that long.
  const rate = Number(options.source?.rate ?? 10_000);
  const eventsPerSecond = Number(options.source?.eventsPerSecond ?? (rate > 0 ? rate : 10_000_000));
  const auctionLengthMs = (2 * Math.floor((100 * 50) / 3) * 1000) / eventsPerSecond;
  const retainMs = Math.max(1, Math.ceil(2 * auctionLengthMs));

  switch (query) {
    case 'q0':
      return { vertices: [source('bids', 'bid'), results(300)], edges: [forward('bids', 'results')] };
    case 'q1':
      return {
        vertices: [
          source('bids', 'bid'),
          op(
            'euros',
            'map',
            'Price in euros',
            {
              steps: [
                { op: 'pick', fields: ['auction', 'bidder', 'price', 'dateTime', 'extra'] },
                { op: 'scale', field: 'price', factor: 0.908 },
              ],
            },
            300,
          ),
          results(600),
        ],
        edges: [forward('bids', 'euros'), forward('euros', 'results')],
      };
    case 'q2':
      return {
        vertices: [
          source('bids', 'bid'),
          op('every123rd', 'filter', 'Auction % 123 = 0', { field: 'auction', op: 'multipleOf', value: 123 }, 300),
          op('pick', 'map', 'Auction and price', { steps: [{ op: 'pick', fields: ['auction', 'price'] }] }, 600),
          results(900),
        ],
        edges: [forward('bids', 'every123rd'), forward('every123rd', 'pick'), forward('pick', 'results')],
      };
    case 'q3':
      return {
        vertices: [
          source('events', 'person,auction'),
          op('category10', 'filter', 'Auctions of category 10', { field: 'category', op: 'eq', value: 10 }, 300, -90),
          op('westerners', 'filter', 'People in OR, ID or CA', { field: 'state', op: 'in', value: 'OR,ID,CA' }, 300, 90),
          op('joined', 'join', 'Auction ⋈ seller', {}, 600),
          results(900),
        ],
        edges: [
          forward('events', 'category10'),
          forward('events', 'westerners'),
          hash('category10', 'joined', 'seller', 'left'),
          hash('westerners', 'joined', 'id', 'right'),
          forward('joined', 'results'),
        ],
      };
    case 'q4':
      return {
        vertices: [
          source('events', 'auction,bid'),
          op('auctions', 'filter', 'Auctions', { field: 'type', op: 'eq', value: 'auction' }, 250, -90),
          op('bids', 'filter', 'Bids', { field: 'type', op: 'eq', value: 'bid' }, 250, 90),
          // Only the fields the query reads go on (Flink's planner pushes the same projection down to its source).
          op(
            'auctionFields',
            'map',
            'Id, category, open, close',
            { steps: [{ op: 'pick', fields: ['id', 'category', 'dateTime', 'expires'] }] },
            500,
            -90,
          ),
          op('bidFields', 'map', 'Auction, price, time', { steps: [{ op: 'pick', fields: ['auction', 'price', 'dateTime'] }] }, 500, 90),
          op('withBids', 'join', 'Auction ⋈ its bids', { retain: `${retainMs}ms` }, 750),
          op('afterOpen', 'filter', 'Bid after it opened', { field: 'right.dateTime', op: 'gte', valueField: 'left.dateTime' }, 1000),
          op('beforeClose', 'filter', 'Bid before it closed', { field: 'right.dateTime', op: 'lte', valueField: 'left.expires' }, 1250),
          op('winning', 'aggregate', 'Highest bid per auction', { aggregates: 'maxBy(right.price) as winner' }, 1500),
          op('perCategory', 'aggregate', 'Average per category', { aggregates: 'avg(winner.right.price) as avgPrice', upsertKey: 'key' }, 1750),
          results(2000),
        ],
        edges: [
          forward('events', 'auctions'),
          forward('events', 'bids'),
          forward('auctions', 'auctionFields'),
          forward('bids', 'bidFields'),
          hash('auctionFields', 'withBids', 'id', 'left'),
          hash('bidFields', 'withBids', 'auction', 'right'),
          forward('withBids', 'afterOpen'),
          forward('afterOpen', 'beforeClose'),
          hash('beforeClose', 'winning', 'key'),
          hash('winning', 'perCategory', 'winner.left.category'),
          forward('perCategory', 'results'),
        ],
      };
    case 'q5':
      return {
        vertices: [
          source('bids', 'bid'),
          // Only the auction crosses the shuffle (its event time travels with it), as Flink's plan projects the bid
          // before its exchange.
          op('auctions', 'map', 'Auction only', { steps: [{ op: 'pick', fields: ['auction'] }] }, 300),
          op('perAuction', 'window', 'Bids per auction, 10 s every 2 s', { assigner: 'sliding', size: '10s', slide: '2s', aggregates: 'count' }, 600),
          op('hottest', 'window', 'Most bids per window', { assigner: 'tumbling', size: '2s', aggregates: 'maxBy(count) as hottest' }, 900),
          results(1200),
        ],
        edges: [
          forward('bids', 'auctions'),
          hash('auctions', 'perAuction', 'auction'),
          hash('perAuction', 'hottest', 'windowEnd'),
          forward('hottest', 'results'),
        ],
      };
    case 'q7':
      return {
        vertices: [
          source('bids', 'bid'),
          op('perAuction', 'window', 'Highest bid per auction, 10 s', { assigner: 'tumbling', size: '10s', aggregates: 'maxBy(price) as top' }, 300),
          op('highest', 'window', 'Highest bid per 10 s', { assigner: 'tumbling', size: '10s', aggregates: 'maxBy(top.price) as top' }, 600),
          results(900),
        ],
        edges: [hash('bids', 'perAuction', 'auction'), hash('perAuction', 'highest', 'windowStart'), forward('highest', 'results')],
      };
    case 'q8':
      return {
        vertices: [
          source('events', 'person,auction'),
          op('persons', 'filter', 'People', { field: 'type', op: 'eq', value: 'person' }, 250, -90),
          op('auctions', 'filter', 'Auctions', { field: 'type', op: 'eq', value: 'auction' }, 250, 90),
          // Only what the join and its rows read crosses the shuffle: a person's id and name, an auction's seller.
          op('personFields', 'map', 'Id and name', { steps: [{ op: 'pick', fields: ['id', 'name'] }] }, 500, -90),
          op('sellers', 'map', 'Seller only', { steps: [{ op: 'pick', fields: ['seller'] }] }, 500, 90),
          op('sameWindow', 'windowJoin', 'Registered and sold in one 10 s window', { assigner: 'tumbling', size: '10s' }, 750),
          results(1050),
        ],
        edges: [
          forward('events', 'persons'),
          forward('events', 'auctions'),
          forward('persons', 'personFields'),
          forward('auctions', 'sellers'),
          hash('personFields', 'sameWindow', 'id', 'left'),
          hash('sellers', 'sameWindow', 'seller', 'right'),
          forward('sameWindow', 'results'),
        ],
      };
    case 'q11':
      return {
        vertices: [
          source('bids', 'bid'),
          op('bidders', 'map', 'Bidder only', { steps: [{ op: 'pick', fields: ['bidder'] }] }, 300),
          op('sessions', 'window', "Bidder's sessions, 10 s gap", { assigner: 'session', gap: '10s', aggregates: 'count' }, 600),
          results(900),
        ],
        edges: [forward('bids', 'bidders'), hash('bidders', 'sessions', 'bidder'), forward('sessions', 'results')],
      };
    case 'q12':
      return {
        vertices: [
          source('bids', 'bid'),
          op('bidders', 'map', 'Bidder only', { steps: [{ op: 'pick', fields: ['bidder'] }] }, 300),
          op(
            'perBidder',
            'window',
            'Bids per bidder, 10 s of processing time',
            { assigner: 'tumbling', size: '10s', time: 'processing', aggregates: 'count' },
            600,
          ),
          results(900),
        ],
        edges: [forward('bids', 'bidders'), hash('bidders', 'perBidder', 'bidder'), forward('perBidder', 'results')],
      };
  }
}
