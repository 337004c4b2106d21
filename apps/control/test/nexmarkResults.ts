import {
  mergeSession,
  NexmarkGenerator,
  slidingWindows,
  tumblingWindow,
  type NexmarkAuction,
  type NexmarkBid,
  type NexmarkPerson,
} from '@keyflow/core';
import pg from 'pg';

/**
 * Each Nexmark query's results computed without the engine, straight from the generator's events, as the rows its
 * Postgres sink holds (key → value): what the tests compare a bounded run against.
 */

/** The source settings the tests run (a bounded stream whose event time spans some windows). */
export interface BoundedNexmark {
  seed: number;
  total: number;
  splits: number;
  eventsPerSecond: number;
}

export interface NexmarkEvents {
  persons: NexmarkPerson[];
  auctions: NexmarkAuction[];
  bids: NexmarkBid[];
}

export function nexmarkEvents(s: BoundedNexmark): NexmarkEvents {
  const gen = new NexmarkGenerator({ seed: s.seed, eventsPerSecond: s.eventsPerSecond, total: s.total, splits: s.splits });
  const out: NexmarkEvents = { persons: [], auctions: [], bids: [] };
  for (let n = 0; n < s.total; n++) {
    const e = gen.eventAt(n);
    if (e.type === 'person') out.persons.push(e);
    else if (e.type === 'auction') out.auctions.push(e);
    else out.bids.push(e);
  }
  return out;
}

/** Of two records tied on the value compared, the one a maxBy keeps: the one whose JSON sorts first. */
const firstByJson = <T>(a: T, b: T) => (JSON.stringify(a) <= JSON.stringify(b) ? a : b);

const bidKey = (b: NexmarkBid) => `${b.auction}|${b.bidder}|${b.dateTime}|${b.extra}`;

export function expectedQ1(e: NexmarkEvents): Map<string, number> {
  return new Map(e.bids.map((b) => [bidKey(b), b.price * 0.908]));
}

export function expectedQ2(e: NexmarkEvents): Map<string, number> {
  return new Map(e.bids.filter((b) => b.auction % 123 === 0).map((b) => [`${b.auction}|${b.price}`, b.price]));
}

/** Auction id → the seller's name, for auctions of category 10 whose seller lives in OR, ID or CA. */
export function expectedQ3(e: NexmarkEvents): Map<string, string> {
  const west = new Map(e.persons.filter((p) => ['OR', 'ID', 'CA'].includes(p.state)).map((p) => [p.id, p]));
  const out = new Map<string, string>();
  for (const a of e.auctions) {
    const p = a.category === 10 ? west.get(a.seller) : undefined;
    if (p) out.set(String(a.id), p.name);
  }
  return out;
}

/** Category → the average over its auctions of each one's highest bid made while it was open (auctions with none left out). */
export function expectedQ4(e: NexmarkEvents): Map<string, number> {
  const auctions = new Map(e.auctions.map((a) => [a.id, a]));
  const highest = new Map<number, number>();
  for (const b of e.bids) {
    const a = auctions.get(b.auction);
    if (a && b.dateTime >= a.dateTime && b.dateTime <= a.expires) highest.set(a.id, Math.max(highest.get(a.id) ?? -Infinity, b.price));
  }
  const perCategory = new Map<number, number[]>();
  for (const [id, price] of highest) perCategory.set(auctions.get(id)!.category, [...(perCategory.get(auctions.get(id)!.category) ?? []), price]);
  return new Map([...perCategory].map(([c, prices]) => [String(c), prices.reduce((x, y) => x + y, 0) / prices.length]));
}

/** Per 10 s window sliding every 2 s (by its end): the auction with the most bids, and how many. */
export function expectedQ5(e: NexmarkEvents): Map<string, { auction: number; count: number }> {
  const counts = new Map<string, number>();
  for (const b of e.bids)
    for (const w of slidingWindows(b.dateTime, 10_000, 2000)) {
      const k = `${w.start}|${b.auction}`;
      counts.set(k, (counts.get(k) ?? 0) + 1);
    }
  const best = new Map<number, { key: number; windowStart: number; windowEnd: number; count: number }>();
  for (const [k, count] of counts) {
    const [start, auction] = k.split('|').map(Number) as [number, number];
    const rec = { key: auction, windowStart: start, windowEnd: start + 10_000, count };
    const held = best.get(rec.windowEnd);
    best.set(rec.windowEnd, !held || count > held.count ? rec : count < held.count ? held : firstByJson(rec, held));
  }
  return new Map([...best].map(([end, r]) => [String(end), { auction: r.key, count: r.count }]));
}

/** Per 10 s tumbling window (by its start): the highest bid, ties to the record a maxBy keeps at each of the two stages. */
export function expectedQ7(e: NexmarkEvents): Map<string, NexmarkBid> {
  const perAuction = new Map<string, { key: number; windowStart: number; windowEnd: number; top: NexmarkBid }>();
  for (const b of e.bids) {
    const w = tumblingWindow(b.dateTime, 10_000);
    const k = `${w.start}|${b.auction}`;
    const held = perAuction.get(k);
    const top = !held || b.price > held.top.price ? b : b.price < held.top.price ? held.top : firstByJson(b, held.top);
    perAuction.set(k, { key: b.auction, windowStart: w.start, windowEnd: w.end, top });
  }
  const best = new Map<number, { key: number; windowStart: number; windowEnd: number; top: NexmarkBid }>();
  for (const r of perAuction.values()) {
    const held = best.get(r.windowStart);
    best.set(r.windowStart, !held || r.top.price > held.top.price ? r : r.top.price < held.top.price ? held : firstByJson(r, held));
  }
  return new Map([...best].map(([start, r]) => [String(start), r.top]));
}

/** `personId|windowStart` → name, for people who registered and created an auction in the same 10 s tumbling window. */
export function expectedQ8(e: NexmarkEvents): Map<string, string> {
  const sellers = new Set(e.auctions.map((a) => `${a.seller}|${tumblingWindow(a.dateTime, 10_000).start}`));
  const out = new Map<string, string>();
  for (const p of e.persons) {
    const k = `${p.id}|${tumblingWindow(p.dateTime, 10_000).start}`;
    if (sellers.has(k)) out.set(k, p.name);
  }
  return out;
}

/** `bidder|sessionStart` → bids, sessions closing after 10 s without a bid. */
export function expectedQ11(e: NexmarkEvents): Map<string, number> {
  const sessions = new Map<number, { start: number; end: number; count: number }[]>();
  for (const b of e.bids) {
    const mine = sessions.get(b.bidder) ?? [];
    const { merged, absorbed } = mergeSession(mine, b.dateTime, 10_000);
    const count = 1 + absorbed.reduce((n, s) => n + (s as unknown as { count: number }).count, 0);
    sessions.set(b.bidder, [...mine.filter((s) => !absorbed.includes(s)), { ...merged, count }]);
  }
  const out = new Map<string, number>();
  for (const [bidder, list] of sessions) for (const s of list) out.set(`${bidder}|${s.start}`, s.count);
  return out;
}

/** Bids per bidder (q12's windows are of processing time: only their sums per bidder are fixed). */
export function bidsPerBidder(e: NexmarkEvents): Map<string, number> {
  const out = new Map<string, number>();
  for (const b of e.bids) out.set(String(b.bidder), (out.get(String(b.bidder)) ?? 0) + 1);
  return out;
}

/** A Postgres sink's table as key → value as stored (read as the sinks' role: the table is in its schema). */
export async function tableRows<T = unknown>(table: string): Promise<Map<string, T>> {
  const client = new pg.Client({ connectionString: process.env.KEYFLOW_SINK_DATABASE_URL });
  await client.connect();
  try {
    const { rows } = await client.query<{ key: string; value: T }>(`SELECT key, value FROM "${table}"`);
    return new Map(rows.map((r) => [r.key, r.value]));
  } finally {
    await client.end();
  }
}
