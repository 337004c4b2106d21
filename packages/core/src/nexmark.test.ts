import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  lastBase0AuctionId,
  lastBase0PersonId,
  NEXMARK_AUCTION_FIELDS,
  NEXMARK_BID_FIELDS,
  NEXMARK_PERSON_FIELDS,
  nexmarkFields,
  nexmarkKindsOf,
  NexmarkGenerator,
  type NexmarkAuction,
  type NexmarkBid,
  type NexmarkConfig,
  type NexmarkEvent,
  type NexmarkPerson,
} from './nexmark.ts';

/** KEYFLOW_PROPERTY_RUNS=n runs more cases (default 100); KEYFLOW_PROPERTY_SEED=s replays a run. */
const RUNS = Number(process.env.KEYFLOW_PROPERTY_RUNS ?? 100);
const SEED = Number(process.env.KEYFLOW_PROPERTY_SEED ?? Math.floor(Math.random() * 2 ** 31));
beforeAll(() => console.log(`nexmark properties: seed ${SEED}, ${RUNS} runs (replay with KEYFLOW_PROPERTY_SEED=${SEED})`));

const EPOCH = Date.UTC(2026, 0, 1);
const base: NexmarkConfig = { seed: 1, eventsPerSecond: 10_000, splits: 16 };
const gen = (over: Partial<NexmarkConfig> = {}) => new NexmarkGenerator({ ...base, ...over });
const events = (g: NexmarkGenerator, from: number, to: number) => Array.from({ length: to - from }, (_, i) => g.eventAt(from + i));

/** A record's size as the reference counts it when it sizes `extra`: 8 bytes a number it counts, strings' lengths. */
function sizeOf(e: NexmarkEvent): number {
  switch (e.type) {
    case 'person':
      return 8 + e.name.length + e.emailAddress.length + e.creditCard.length + e.city.length + e.state.length + e.extra.length;
    case 'auction':
      return 8 + e.itemName.length + e.description.length + 8 * 5 + e.extra.length;
    case 'bid':
      return 8 * 4 + e.extra.length;
  }
}

describe('NexmarkGenerator determinism', () => {
  it('pins the first person, auction and bid of seed 1, so a changed generator cannot silently change replays', () => {
    const g = gen();
    expect(g.eventAt(0)).toEqual({
      type: 'person',
      id: 1000,
      name: 'Deiter Shultz',
      emailAddress: 'saqdj@ncl.com',
      creditCard: '4060 2461 3354 8181',
      city: 'Phoenix',
      state: 'WA',
      dateTime: EPOCH,
      extra: 'uzzivjzeihbhgfxbjywkxkduwopdjddvbassmhlosxgltbxhlcwhdwcywapyqgurvpxqxovnvgwjquscziqqvbauwuapgzprclglkwibrnstblqvxjnxfulyqihzfunbigkpee',
    });
    expect(g.eventAt(1)).toEqual({
      type: 'auction',
      id: 1000,
      itemName: 'v fmc',
      description: 'kqquv aykegommdxqgezaowrp',
      initialBid: 1187,
      reserve: 6412190,
      dateTime: EPOCH,
      expires: EPOCH + 3,
      seller: 1004,
      category: 10,
      extra:
        'vewtffrxecuyiaiqbdgpqlcrzztwbmwkjdbkxnrgeuzzuuffjlwaoasmdahowzbkvwisyydgivbpcatieahxeypchyejhvhvcnetgzinpfhuccscikmwbsztclkqjqqsuqmruyrwujhlgclcrfkqnzdyqlppxxvmvcdwqssvcklppitjnjejjjpwumiiueefvshumytlvjohucbqwfindekmbrkrgzgimtdguvsoitfemtjiyiqhbjchlkbkztkxxscjcavivvpnnnfzmczcrorwxwhswuzvswdjxqemotnxkhxvmajggwmakjrqxgcdysiseonudmvkceadesqviiusxtjprxebtvehdfukwevpkbhlozywwsebffpohhxwcsymgrlmtmfvhsixpjfmglffzwbtqu',
    });
    expect(g.eventAt(4)).toEqual({
      type: 'bid',
      auction: 1000,
      bidder: 1001,
      price: 564624,
      channel: 'Baidu',
      url: 'https://www.nexmark.com/cxja/suh/zprl/item.htm?query=1',
      dateTime: EPOCH,
      extra: 'xgjiogrbgwligephkjhwjupvxwbhmquupcolmbxjbdfkychellkxsmcbakgnbvjnlkjnmohoquajdcsm',
    });
  });

  it('property: a restore at any event number makes exactly the events a generator that made those before it makes', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }),
        fc.integer({ min: 1, max: 20 }),
        fc.constantFrom(1, 7, 1000, 10_000, 1_000_000),
        fc.nat(3000),
        fc.integer({ min: 1, max: 60 }),
        (seed, outOfOrderGroupSize, eventsPerSecond, n, count) => {
          const config = { ...base, seed, outOfOrderGroupSize, eventsPerSecond };
          const before = new NexmarkGenerator(config);
          const all = events(before, 0, n + count);
          const restored = new NexmarkGenerator(config);
          expect(events(restored, n, n + count)).toEqual(all.slice(n));
        },
      ),
      { numRuns: RUNS, seed: SEED },
    );
  });

  it('depends only on the event number, in any order asked, beyond 2^32 too', () => {
    const g = gen();
    const sequential = events(g, 0, 500);
    const order = Array.from({ length: 500 }, (_, i) => (i * 7919) % 500);
    for (const i of order) expect(g.eventAt(i)).toEqual(sequential[i]);
    const far = 2 ** 32 + 54;
    expect(gen().eventAt(far)).toEqual(g.eventAt(far));
    expect({ ...g.eventAt(far), dateTime: 0 }).not.toEqual({ ...g.eventAt(54), dateTime: 0 });
  });

  it.each([
    [1, 2],
    [42, 43],
    [7, -7],
  ])('seed %i and seed %i give different events', (a, b) => {
    const ea = events(gen({ seed: a }), 0, 200);
    const eb = events(gen({ seed: b }), 0, 200);
    expect(ea.filter((e, i) => e.extra === eb[i]!.extra).length).toBeLessThan(5);
  });

  it('has the field lists as its records have their keys', () => {
    const g = gen();
    expect(Object.keys(g.eventAt(0))).toEqual(NEXMARK_PERSON_FIELDS);
    expect(Object.keys(g.eventAt(1))).toEqual(NEXMARK_AUCTION_FIELDS);
    expect(Object.keys(g.eventAt(4))).toEqual(NEXMARK_BID_FIELDS);
    expect(nexmarkFields(['bid'])).toEqual(NEXMARK_BID_FIELDS);
    expect(nexmarkFields(nexmarkKindsOf('person,bid'))).toEqual([...NEXMARK_PERSON_FIELDS, 'auction', 'bidder', 'price', 'channel', 'url']);
    expect(nexmarkKindsOf('all')).toEqual(['person', 'auction', 'bid']);
  });
});

describe('NexmarkGenerator over a million events (the reference’s distributions)', () => {
  const N = 1_000_000;
  const g = gen();
  const stats = {
    perBlock: true,
    kindMismatches: 0,
    persons: [] as NexmarkPerson[],
    auctionIds: [] as number[],
    categories: new Set<number>(),
    bids: 0,
    hotAuctions: 0,
    hotBidders: 0,
    hotChannels: 0,
    channelIds: 0,
    sellers: 0,
    hotSellers: 0,
    badRefs: 0,
    sizes: { person: 0, auction: 0, bid: 0 },
    counts: { person: 0, auction: 0, bid: 0 },
  };

  beforeAll(() => {
    const block = { person: 0, auction: 0, bid: 0 };
    for (let n = 0; n < N; n++) {
      const e = g.eventAt(n);
      if (g.kindAt(n) !== e.type) stats.kindMismatches++;
      block[e.type]++;
      stats.counts[e.type]++;
      stats.sizes[e.type] += sizeOf(e);
      if (n % 50 === 49) {
        if (block.person !== 1 || block.auction !== 3 || block.bid !== 46) stats.perBlock = false;
        block.person = block.auction = block.bid = 0;
      }
      if (e.type === 'person') stats.persons.push(e);
      else if (e.type === 'auction') {
        const a: NexmarkAuction = e;
        stats.auctionIds.push(a.id);
        stats.categories.add(a.category);
        stats.sellers++;
        if (a.seller - 1000 === Math.floor(lastBase0PersonId(n) / 100) * 100) stats.hotSellers++;
        if (a.expires <= a.dateTime || a.reserve <= a.initialBid) stats.badRefs++;
      } else {
        const b: NexmarkBid = e;
        stats.bids++;
        if (b.auction - 1000 === Math.floor(lastBase0AuctionId(n) / 100) * 100) stats.hotAuctions++;
        if (b.bidder - 1000 === Math.floor(lastBase0PersonId(n) / 100) * 100 + 1) stats.hotBidders++;
        if (['Google', 'Facebook', 'Baidu', 'Apple'].includes(b.channel)) stats.hotChannels++;
        else if (!/^channel-\d{1,4}$/.test(b.channel)) stats.badRefs++;
        if (b.url.includes('&channel_id=')) stats.channelIds++;
        // A bid names an auction and a bidder made at most the reference's lead (10) ahead of it.
        if (b.auction > lastBase0AuctionId(n) + 1010 || b.bidder > lastBase0PersonId(n) + 1010 || b.price < 1) stats.badRefs++;
      }
    }
  });

  it('makes 1 person, 3 auctions and 46 bids in every 50 events', () => {
    expect(stats.perBlock).toBe(true);
    expect(stats.kindMismatches).toBe(0);
    expect(stats.counts).toEqual({ person: N / 50, auction: (3 * N) / 50, bid: (46 * N) / 50 });
  });

  it('numbers persons and auctions from 1000 up, one by one in event order', () => {
    expect(stats.persons.slice(0, 3).map((p) => p.id)).toEqual([1000, 1001, 1002]);
    expect(stats.persons.every((p, i) => p.id === 1000 + i)).toBe(true);
    expect(stats.auctionIds.every((id, i) => id === 1000 + i)).toBe(true);
  });

  it('sends half the bids to hot auctions, three quarters from hot bidders, three quarters of auctions from hot sellers', () => {
    // Slightly above the hot share: a random pick lands on the hot one now and then.
    expect(Math.abs(stats.hotAuctions / stats.bids - 0.505)).toBeLessThan(0.01);
    expect(Math.abs(stats.hotBidders / stats.bids - 0.75)).toBeLessThan(0.01);
    expect(Math.abs(stats.hotSellers / stats.sellers - 0.75)).toBeLessThan(0.01);
  });

  it('keeps categories 10 to 14, references within the lead, auctions that end after they start', () => {
    expect([...stats.categories].sort((a, b) => a - b)).toEqual([10, 11, 12, 13, 14]);
    expect(stats.badRefs).toBe(0);
  });

  it('sizes records to 200, 500 and 100 bytes on average (as the reference counts them)', () => {
    expect(Math.abs(stats.sizes.person / stats.counts.person / 200 - 1)).toBeLessThan(0.1);
    expect(Math.abs(stats.sizes.auction / stats.counts.auction / 500 - 1)).toBeLessThan(0.1);
    expect(Math.abs(stats.sizes.bid / stats.counts.bid / 100 - 1)).toBeLessThan(0.1);
  });

  it('takes half the bids from the four hot channels, the others from channel-n with a channel_id in 9 of 10 urls', () => {
    expect(Math.abs(stats.hotChannels / stats.bids - 0.5)).toBeLessThan(0.01);
    expect(Math.abs(stats.channelIds / (stats.bids - stats.hotChannels) - 0.9)).toBeLessThan(0.03);
  });
});

describe('NexmarkGenerator splits and event time', () => {
  const total = 3000;

  it.each([1, 3, 16])('deals events 0…total-1 into %i splits, each event the same whatever the split count', (splits) => {
    const whole = gen({ splits: 1, total });
    const g = gen({ splits, total });
    const seen = new Map<number, NexmarkEvent>();
    for (let s = 0; s < splits; s++)
      for (let o = 0; o < g.splitSize(s); o++) {
        const n = g.indexOf(s, o);
        expect(seen.has(n)).toBe(false);
        seen.set(n, g.eventAt(n));
      }
    expect([...seen.keys()].sort((a, b) => a - b)).toEqual(Array.from({ length: total }, (_, n) => n));
    for (const [n, e] of seen) expect(e).toEqual(whole.eventAt(n));
  });

  it.each([1, 3, 16])('gives each of %i splits non-decreasing timestamps', (splits) => {
    const g = gen({ splits, eventsPerSecond: 700, total });
    for (let s = 0; s < splits; s++) {
      const times = Array.from({ length: g.splitSize(s) }, (_, o) => g.eventAt(g.indexOf(s, o)).dateTime);
      expect(times.every((t, i) => i === 0 || t >= times[i - 1]!)).toBe(true);
    }
  });

  it('has unbounded splits without a total, and splitsFor as the generator source has it', () => {
    expect(gen().splitSize(3)).toBe(Infinity);
  });

  it('times event n as the reference does: whole µs at 1e6/eventsPerSecond each, then whole ms, from startAt', () => {
    const g = gen({ eventsPerSecond: 3, startAt: Date.UTC(2026, 10, 29) });
    expect([0, 1, 2, 3, 4, 301].map((n) => g.timeAt(n) - Date.UTC(2026, 10, 29))).toEqual([0, 333, 666, 1000, 1333, 100_333]);
    expect(gen().timeAt(25)).toBe(EPOCH + 2);
  });

  it('shuffles ids within groups of outOfOrderGroupSize; each event carries its id’s time, so event time is out of order within a group', () => {
    const g = gen({ outOfOrderGroupSize: 5, eventsPerSecond: 1000 });
    const ids = Array.from({ length: 700 }, (_, n) => g.idAt(n));
    for (let k = 0; k < 700; k += 5) expect(ids.slice(k, k + 5).sort((a, b) => a - b)).toEqual([0, 1, 2, 3, 4].map((i) => k + i));
    expect(ids.slice(0, 10)).toEqual([0, 3, 1, 4, 2, 5, 8, 6, 9, 7]);
    const times = ids.map((_, n) => g.eventAt(n).dateTime);
    expect(times).toEqual(ids.map((id) => g.timeAt(id)));
    expect(ids.map((_, n) => g.dateTimeAt(n))).toEqual(times);
    // The schedule (timeAt by event number) is in order; the time an event carries is less than a group off it.
    times.forEach((t, n) => expect(Math.abs(t - g.timeAt(n))).toBeLessThan(5));
    expect(times.filter((t, n) => n > 0 && t < times[n - 1]!).length).toBeGreaterThan(100);
    expect(ids.map((_, n) => g.kindAt(n))).toEqual(ids.map((_, n) => g.eventAt(n).type));
  });

  it('selects only the kinds asked for, from the id alone', () => {
    const g = gen({ kinds: ['bid'] });
    const all = gen();
    for (let n = 0; n < 500; n++) expect(g.selects(n)).toBe(all.eventAt(n).type === 'bid');
    expect(gen({ kinds: ['person', 'auction'] }).selects(0)).toBe(true);
    expect(all.selects(17)).toBe(true);
  });
});
