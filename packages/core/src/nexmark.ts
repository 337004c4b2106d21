export type NexmarkKind = 'person' | 'auction' | 'bid';

export interface NexmarkPerson {
  type: 'person';
  id: number;
  name: string;
  emailAddress: string;
  creditCard: string;
  city: string;
  state: string;
  /** Event time, ms since the epoch. */
  dateTime: number;
  extra: string;
}

export interface NexmarkAuction {
  type: 'auction';
  id: number;
  itemName: string;
  description: string;
  initialBid: number;
  reserve: number;
  dateTime: number;
  expires: number;
  seller: number;
  category: number;
  extra: string;
}

export interface NexmarkBid {
  type: 'bid';
  auction: number;
  bidder: number;
  price: number;
  channel: string;
  url: string;
  dateTime: number;
  extra: string;
}

export type NexmarkEvent = NexmarkPerson | NexmarkAuction | NexmarkBid;

export const NEXMARK_KINDS: readonly NexmarkKind[] = ['person', 'auction', 'bid'];
/** The fields of each kind's records, in the order they have them. */
export const NEXMARK_PERSON_FIELDS: readonly string[] = ['type', 'id', 'name', 'emailAddress', 'creditCard', 'city', 'state', 'dateTime', 'extra'];
export const NEXMARK_AUCTION_FIELDS: readonly string[] = [
  'type',
  'id',
  'itemName',
  'description',
  'initialBid',
  'reserve',
  'dateTime',
  'expires',
  'seller',
  'category',
  'extra',
];
export const NEXMARK_BID_FIELDS: readonly string[] = ['type', 'auction', 'bidder', 'price', 'channel', 'url', 'dateTime', 'extra'];

/** What a `nexmark` source's `kinds` setting may name: one kind, two, or all. */
export const NEXMARK_KIND_CHOICES = ['all', 'person', 'auction', 'bid', 'person,auction', 'person,bid', 'auction,bid'] as const;
export type NexmarkKindChoice = (typeof NEXMARK_KIND_CHOICES)[number];

/** The kinds a `kinds` setting names. */
export function nexmarkKindsOf(choice: NexmarkKindChoice): NexmarkKind[] {
  return choice === 'all' ? [...NEXMARK_KINDS] : (choice.split(',') as NexmarkKind[]);
}

/** The fields of the records of `kinds`: `type` and the union of theirs, each once. */
export function nexmarkFields(kinds: readonly NexmarkKind[]): string[] {
  const lists = { person: NEXMARK_PERSON_FIELDS, auction: NEXMARK_AUCTION_FIELDS, bid: NEXMARK_BID_FIELDS };
  return [...new Set(['type', ...NEXMARK_KINDS.filter((k) => kinds.includes(k)).flatMap((k) => lists[k])])];
}

export interface NexmarkConfig {
  seed: number;
  /** Event-time rate: event n's time is `startAt + n / eventsPerSecond` seconds (the reference's inter-event delay). */
  eventsPerSecond: number;
  /** Events (of all kinds) in all, or undefined for an unbounded stream. */
  total?: number | undefined;
  /** Fixed number of splits the events are dealt into; the source's parallelism may change up to it. */
  splits: number;
  /** Event time of event 0, ms since the epoch (default 2026-01-01T00:00:00Z). */
  startAt?: number;
  /** Average sizes of each kind's records, bytes as the reference counts them (default 200, 500, 100). */
  personAvgSize?: number;
  auctionAvgSize?: number;
  bidAvgSize?: number;
  /** Ids, and so the event times they carry, are shuffled within groups of this many events (default 1: in order). */
  outOfOrderGroupSize?: number;
  /** 1 − 1/ratio of bids go to a hot auction (default 2), are made by a hot bidder (default 4); of auctions, by a hot seller (default 4). */
  hotAuctionRatio?: number;
  hotBiddersRatio?: number;
  hotSellersRatio?: number;
  /** People a bid or an auction picks from when not hot: the latest this many (default 1000). */
  numActivePeople?: number;
  /** Auctions a bid picks from when not hot: the latest this many (default 100). */
  numInFlightAuctions?: number;
  /** The kinds a source emits (default all three); the others are skipped. */
  kinds?: readonly NexmarkKind[];
}

/** Per 50 events: 1 person, 3 auctions, 46 bids (the reference's proportions). */
const PERSON_PROPORTION = 1;
const AUCTION_PROPORTION = 3;
const TOTAL_PROPORTION = 50;
const FIRST_PERSON_ID = 1000;
const FIRST_AUCTION_ID = 1000;
const FIRST_CATEGORY_ID = 10;
const NUM_CATEGORIES = 5;
const PERSON_ID_LEAD = 10;
const AUCTION_ID_LEAD = 10;
/** Hot auctions, bidders and sellers are the first (a bidder: the second) of each batch of this many. */
const HOT_AUCTION_RATIO = 100;
const HOT_BIDDER_RATIO = 100;
const HOT_SELLER_RATIO = 100;
const HOT_CHANNELS_RATIO = 2;
const CHANNELS_NUMBER = 10_000;
const MIN_STRING_LENGTH = 3;

const TWO_32 = 4294967296;
const TWO_53 = 9007199254740992;
const EPOCH = Date.UTC(2026, 0, 1);

const US_STATES = ['AZ', 'CA', 'ID', 'OR', 'WA', 'WY'];
const US_CITIES = ['Phoenix', 'Los Angeles', 'San Francisco', 'Boise', 'Portland', 'Bend', 'Redmond', 'Seattle', 'Kent', 'Cheyenne'];
const FIRST_NAMES = ['Peter', 'Paul', 'Luke', 'John', 'Saul', 'Vicky', 'Kate', 'Julie', 'Sarah', 'Deiter', 'Walter'];
const LAST_NAMES = ['Shultz', 'Abrams', 'Spencer', 'White', 'Bartels', 'Walton', 'Smith', 'Jones', 'Noris'];
const HOT_CHANNELS = ['Google', 'Facebook', 'Baidu', 'Apple'];

/** The last person id (base 0) made by event `eventId`: its own when it is a person. */
export function lastBase0PersonId(eventId: number): number {
  const epoch = Math.floor(eventId / TOTAL_PROPORTION);
  let offset = eventId % TOTAL_PROPORTION;
  if (offset >= PERSON_PROPORTION) offset = PERSON_PROPORTION - 1;
  return epoch * PERSON_PROPORTION + offset;
}

/** The last auction id (base 0) made by event `eventId`: its own when it is an auction (-1 before the first). */
export function lastBase0AuctionId(eventId: number): number {
  let epoch = Math.floor(eventId / TOTAL_PROPORTION);
  let offset = eventId % TOTAL_PROPORTION;
  if (offset < PERSON_PROPORTION) {
    epoch--;
    offset = AUCTION_PROPORTION - 1;
  } else if (offset >= PERSON_PROPORTION + AUCTION_PROPORTION) offset = AUCTION_PROPORTION - 1;
  else offset -= PERSON_PROPORTION;
  return epoch * AUCTION_PROPORTION + offset;
}

/** The kind of event `eventId`, by its place in its group of 50. */
function kindOfId(eventId: number): NexmarkKind {
  const rem = eventId % TOTAL_PROPORTION;
  return rem < PERSON_PROPORTION ? 'person' : rem < PERSON_PROPORTION + AUCTION_PROPORTION ? 'auction' : 'bid';
}

function mix32(h: number): number {
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

/** splitmix32, seeded per event: one instance is reseeded for each event, so no state passes between events. */
class Rng {
  private state = 0;

  seed(seed: number, eventId: number): this {
    let h = mix32(Math.imul(seed | 0, 0x9e3779b1) ^ Math.floor(seed / TWO_32));
    h = mix32(h ^ (eventId >>> 0));
    this.state = mix32(h ^ Math.imul(Math.floor(eventId / TWO_32) | 0, 0x27d4eb2f)) | 0;
    return this;
  }

  next(): number {
    this.state = (this.state + 0x9e3779b9) | 0;
    return mix32(this.state);
  }

  /** In [0, 1), 32 bits. */
  double(): number {
    return this.next() / TWO_32;
  }

  /** In [0, n), for n up to 2^21 (exact). */
  int(n: number): number {
    return Math.floor((this.next() * n) / TWO_32);
  }

  /** In [0, n), for any safe n (53 bits drawn). */
  long(n: number): number {
    if (n <= 2097152) return this.int(n);
    const u = ((this.next() >>> 5) * 67108864 + (this.next() >>> 6)) / TWO_53;
    return Math.min(Math.floor(u * n), n - 1);
  }
}

/** Text the events' strings are cut from (seeded at load, the same in every process): a draw picks where. */
const POOL_SIZE = 1 << 16;
const POOL_MARGIN = 4096;

function randomText(rng: Rng, length: number, special: string | undefined): string {
  const chars: string[] = [];
  for (let i = 0; i < length; i++) chars.push(special !== undefined && rng.int(13) === 0 ? special : String.fromCharCode(97 + rng.int(26)));
  return chars.join('');
}

const poolRng = new Rng().seed(0x6e65786d, 0);
/** Lower-case letters, the reference's `nextExactString`. */
const LETTERS = randomText(poolRng, POOL_SIZE + POOL_MARGIN, undefined);
/** Letters with a space in 13, the reference's `nextString`. */
const WORDS = randomText(poolRng, POOL_SIZE + POOL_MARGIN, ' ');
const CARD_GROUPS = Array.from({ length: 10_000 }, (_, i) => String(i).padStart(4, '0'));

/** The reference's `nextString`: 3 to maxLength-1 letters with a space in 13, trimmed. */
function nextString(rng: Rng, maxLength: number): string {
  const len = MIN_STRING_LENGTH + rng.int(maxLength - MIN_STRING_LENGTH);
  const at = rng.int(POOL_SIZE);
  return WORDS.slice(at, at + len).trim();
}

/** `length` letters from the pool at a seeded place. */
function exactString(rng: Rng, length: number): string {
  let at = rng.int(POOL_SIZE);
  if (length <= POOL_MARGIN) return LETTERS.slice(at, at + length);
  let s = '';
  for (let left = length; left > 0; left -= POOL_MARGIN, at = (at + 7919) % POOL_SIZE) s += LETTERS.slice(at, at + Math.min(left, POOL_MARGIN));
  return s;
}

/** The reference's `nextExtra`: a string that brings a record of `currentSize` bytes to `desiredAverage` on average. */
function nextExtra(rng: Rng, currentSize: number, desiredAverage: number): string {
  if (currentSize > desiredAverage) return '';
  const desired = desiredAverage - currentSize;
  const delta = Math.round(desired * 0.2);
  return exactString(rng, desired - delta + (delta === 0 ? 0 : rng.int(2 * delta)));
}

/** The reference's `nextPrice`: log-uniform cents from 1.00 to 1,000,000.00. */
function nextPrice(rng: Rng): number {
  return Math.round(10 ** (rng.double() * 6) * 100);
}

/** The reference's `getBaseUrl`, from a seeded draw rather than an unseeded one. */
function baseUrl(rng: Rng): string {
  const part = () => randomText(rng, MIN_STRING_LENGTH + rng.int(5 - MIN_STRING_LENGTH), '_');
  return `https://www.nexmark.com/${part()}/${part()}/${part()}/item.htm?query=1`;
}

/** Java's `Integer.reverse`: the 32 bits in reverse order, as a signed int. */
function reverseBits(n: number): number {
  let r = 0;
  for (let i = 0; i < 32; i++, n >>>= 1) r = (r << 1) | (n & 1);
  return r;
}

const HOT_URLS = HOT_CHANNELS.map((_, i) => baseUrl(new Rng().seed(0x686f74, i)));
/** Each channel's name and url, made the first time a bid names it (a pure function of the channel number). */
const channelNames: string[] = [];
const channelUrls: string[] = [];

function channelOf(n: number): void {
  if (channelNames[n] !== undefined) return;
  const rng = new Rng().seed(0x63686e, n);
  const url = baseUrl(rng);
  channelUrls[n] = rng.int(10) > 0 ? `${url}&channel_id=${Math.abs(reverseBits(n))}` : url;
  channelNames[n] = `channel-${n}`;
}

/**
 * The Nexmark benchmark's events as the reference generator (Beam's and nexmark-flink's `NexmarkGenerator`) makes them:
 * its proportions, id arithmetic, hot keys and sizes, but each event drawn from a PRNG seeded by (seed, event id), so
 * any event can be made without the ones before it and a replay or a rescale makes the same events. Event number n
 * (0, 1, …) has event id `idAt(n)`, its kind from the id, and its time from its id's place in the stream. Events are
 * dealt round robin into splits, like the generator source's.
 */
export class NexmarkGenerator {
  private readonly rng = new Rng();
  private readonly usPerEvent: number;
  private readonly startAt: number;
  private readonly group: number;
  private readonly personAvgSize: number;
  private readonly auctionAvgSize: number;
  private readonly bidAvgSize: number;
  private readonly hotAuctionRatio: number;
  private readonly hotBiddersRatio: number;
  private readonly hotSellersRatio: number;
  private readonly numActivePeople: number;
  private readonly numInFlightAuctions: number;
  /** Events between an auction and the one numInFlightAuctions later: how long auctions last, on average. */
  private readonly eventsForAuctions: number;
  private readonly wanted: { person: boolean; auction: boolean; bid: boolean };

  constructor(readonly config: NexmarkConfig) {
    this.usPerEvent = 1_000_000 / config.eventsPerSecond;
    this.startAt = config.startAt ?? EPOCH;
    this.group = config.outOfOrderGroupSize ?? 1;
    this.personAvgSize = config.personAvgSize ?? 200;
    this.auctionAvgSize = config.auctionAvgSize ?? 500;
    this.bidAvgSize = config.bidAvgSize ?? 100;
    this.hotAuctionRatio = config.hotAuctionRatio ?? 2;
    this.hotBiddersRatio = config.hotBiddersRatio ?? 4;
    this.hotSellersRatio = config.hotSellersRatio ?? 4;
    this.numActivePeople = config.numActivePeople ?? 1000;
    this.numInFlightAuctions = config.numInFlightAuctions ?? 100;
    this.eventsForAuctions = Math.floor((this.numInFlightAuctions * TOTAL_PROPORTION) / AUCTION_PROPORTION);
    const kinds = config.kinds ?? NEXMARK_KINDS;
    this.wanted = { person: kinds.includes('person'), auction: kinds.includes('auction'), bid: kinds.includes('bid') };
  }

  /** The event id of event number n: n itself, or shuffled within its group of `outOfOrderGroupSize` (the reference's). */
  idAt(n: number): number {
    const g = this.group;
    return g === 1 ? n : n - (n % g) + (((n % g) * 953) % g);
  }

  /** The kind of event n, from its id alone (nothing is generated). */
  kindAt(n: number): NexmarkKind {
    return kindOfId(this.idAt(n));
  }

  /** Whether event n is of a kind the source emits (`kinds`). */
  selects(n: number): boolean {
    return this.wanted[kindOfId(this.idAt(n))];
  }

  /** The time of event number n, ms: the reference's `timestampForEvent`, whole µs then whole ms. */
  timeAt(n: number): number {
    return this.startAt + Math.floor(Math.floor(n * this.usPerEvent) / 1000);
  }

  /** The event time event n carries (its `dateTime`): the time of its id's place, so out of order within its group. */
  dateTimeAt(n: number): number {
    return this.timeAt(this.idAt(n));
  }

  eventAt(n: number): NexmarkEvent {
    const id = this.idAt(n);
    const rng = this.rng.seed(this.config.seed, id);
    const dateTime = this.timeAt(id);
    const rem = id % TOTAL_PROPORTION;
    if (rem < PERSON_PROPORTION) return this.person(rng, id, dateTime);
    if (rem < PERSON_PROPORTION + AUCTION_PROPORTION) return this.auction(rng, id, dateTime);
    return this.bid(rng, id, dateTime);
  }

  /** The global event number of a split's local offset: events are dealt round robin into the splits. */
  indexOf(split: number, offset: number): number {
    return offset * this.config.splits + split;
  }

  /** Events split `split` holds in all (Infinity when unbounded). */
  splitSize(split: number): number {
    const { total, splits } = this.config;
    if (total === undefined) return Infinity;
    return Math.max(0, Math.ceil((total - split) / splits));
  }

  private person(rng: Rng, id: number, dateTime: number): NexmarkPerson {
    const name = `${FIRST_NAMES[rng.int(FIRST_NAMES.length)]!} ${LAST_NAMES[rng.int(LAST_NAMES.length)]!}`;
    const emailAddress = `${nextString(rng, 7)}@${nextString(rng, 5)}.com`;
    const creditCard = `${CARD_GROUPS[rng.int(10_000)]!} ${CARD_GROUPS[rng.int(10_000)]!} ${CARD_GROUPS[rng.int(10_000)]!} ${CARD_GROUPS[rng.int(10_000)]!}`;
    const city = US_CITIES[rng.int(US_CITIES.length)]!;
    const state = US_STATES[rng.int(US_STATES.length)]!;
    const size = 8 + name.length + emailAddress.length + creditCard.length + city.length + state.length;
    const extra = nextExtra(rng, size, this.personAvgSize);
    return { type: 'person', id: lastBase0PersonId(id) + FIRST_PERSON_ID, name, emailAddress, creditCard, city, state, dateTime, extra };
  }

  private auction(rng: Rng, id: number, dateTime: number): NexmarkAuction {
    const seller =
      (rng.int(this.hotSellersRatio) > 0
        ? Math.floor(lastBase0PersonId(id) / HOT_SELLER_RATIO) * HOT_SELLER_RATIO
        : this.nextBase0PersonId(id, rng)) + FIRST_PERSON_ID;
    const category = FIRST_CATEGORY_ID + rng.int(NUM_CATEGORIES);
    const initialBid = nextPrice(rng);
    // The reference's nextAuctionLengthMs: on average as long as numInFlightAuctions more auctions take to come.
    const horizon = this.timeAt(id + this.eventsForAuctions) - dateTime;
    const expires = dateTime + 1 + rng.long(Math.max(horizon * 2, 1));
    const itemName = nextString(rng, 20);
    const description = nextString(rng, 100);
    const reserve = initialBid + nextPrice(rng);
    const extra = nextExtra(rng, 8 + itemName.length + description.length + 8 * 5, this.auctionAvgSize);
    const auctionId = lastBase0AuctionId(id) + FIRST_AUCTION_ID;
    return { type: 'auction', id: auctionId, itemName, description, initialBid, reserve, dateTime, expires, seller, category, extra };
  }

  private bid(rng: Rng, id: number, dateTime: number): NexmarkBid {
    const auction =
      (rng.int(this.hotAuctionRatio) > 0
        ? Math.floor(lastBase0AuctionId(id) / HOT_AUCTION_RATIO) * HOT_AUCTION_RATIO
        : this.nextBase0AuctionId(id, rng)) + FIRST_AUCTION_ID;
    const bidder =
      (rng.int(this.hotBiddersRatio) > 0
        ? Math.floor(lastBase0PersonId(id) / HOT_BIDDER_RATIO) * HOT_BIDDER_RATIO + 1
        : this.nextBase0PersonId(id, rng)) + FIRST_PERSON_ID;
    const price = nextPrice(rng);
    let channel: string;
    let url: string;
    if (rng.int(HOT_CHANNELS_RATIO) > 0) {
      const i = rng.int(HOT_CHANNELS.length);
      channel = HOT_CHANNELS[i]!;
      url = HOT_URLS[i]!;
    } else {
      const c = rng.int(CHANNELS_NUMBER);
      channelOf(c);
      channel = channelNames[c]!;
      url = channelUrls[c]!;
    }
    const extra = nextExtra(rng, 8 * 4, this.bidAvgSize);
    return { type: 'bid', auction, bidder, price, channel, url, dateTime, extra };
  }

  /** A person among the latest numActivePeople, or up to PERSON_ID_LEAD not made yet. */
  private nextBase0PersonId(eventId: number, rng: Rng): number {
    const numPeople = lastBase0PersonId(eventId) + 1;
    const active = Math.min(numPeople, this.numActivePeople);
    return numPeople - active + rng.long(active + PERSON_ID_LEAD);
  }

  /** An auction among the latest numInFlightAuctions, or up to AUCTION_ID_LEAD not made yet. */
  private nextBase0AuctionId(eventId: number, rng: Rng): number {
    const max = lastBase0AuctionId(eventId);
    const min = Math.max(max - this.numInFlightAuctions, 0);
    return min + rng.long(max - min + 1 + AUCTION_ID_LEAD);
  }
}
