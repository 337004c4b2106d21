/** One event of the `generator` source. */
export interface GeneratorEvent {
  user: string;
  item: string;
  amount: number;
  ts: number;
}

export interface GeneratorConfig {
  seed: number;
  /** Keys (distinct users). */
  keys: number;
  skew: 'uniform' | 'zipf';
  zipfExponent: number;
  /** Events in all, or undefined for an unbounded stream. */
  total?: number | undefined;
  /** Fixed number of splits the events are dealt into; the source's parallelism may change up to it. */
  splits: number;
  /** Event time between consecutive events, ms (default 1). */
  msPerEvent?: number;
  /** Each event's time is up to this many ms behind its place in the sequence, at random (default 0: in order). */
  outOfOrderness?: number;
  /** The last this many splits hold no events (default 0). */
  idleSplits?: number;
  /** Event time of the stream's start, ms since the epoch (default 2026-01-01T00:00:00Z). */
  startAt?: number;
  /** Every n-th event comes `lateBy` ms late (0 or undefined: none). */
  lateEvery?: number;
  /** How far behind its place such an event's time is; only events at least this far into the stream are moved. */
  lateBy?: number;
}

const TWO_32 = 4294967296;
const EPOCH = Date.UTC(2026, 0, 1);

/** A 32-bit avalanche of (seed, index, stream): counter-based, so any event can be made without the ones before it. */
function hash32(seed: number, index: number, stream: number): number {
  let h = Math.imul(seed ^ stream, 0x9e3779b1) ^ (index >>> 0);
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h ^= Math.floor(index / TWO_32) | 0;
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  h ^= h >>> 16;
  h = Math.imul(h ^ (h >>> 15), 0x2c1b3c6d);
  h ^= h >>> 12;
  return h >>> 0;
}

/**
 * Deterministic events from a seed: event `i` depends only on the config and `i`, so a source can rewind to
 * any offset and a test can compute the expected results independently.
 */
export class EventGenerator {
  readonly users: string[];
  private readonly cdf: Float64Array | undefined;

  constructor(readonly config: GeneratorConfig) {
    this.users = Array.from({ length: config.keys }, (_, k) => `u${k}`);
    if (config.skew === 'zipf') {
      const cdf = new Float64Array(config.keys);
      let sum = 0;
      for (let r = 0; r < config.keys; r++) cdf[r] = sum += 1 / (r + 1) ** config.zipfExponent;
      for (let r = 0; r < config.keys; r++) cdf[r]! /= sum;
      this.cdf = cdf;
    }
  }

  /** The key index (0 … keys-1) of event `index`. */
  keyIndexAt(index: number): number {
    const u = hash32(this.config.seed, index, 1) / TWO_32;
    const cdf = this.cdf;
    if (!cdf) return Math.floor(u * this.config.keys);
    let lo = 0;
    let hi = cdf.length - 1;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (cdf[mid]! > u) hi = mid;
      else lo = mid + 1;
    }
    return lo;
  }

  eventAt(index: number): GeneratorEvent {
    return {
      user: this.users[this.keyIndexAt(index)]!,
      item: `i${hash32(this.config.seed, index, 2) % 1000}`,
      amount: 1 + (hash32(this.config.seed, index, 3) % 100),
      ts: this.timeAt(index),
    };
  }

  /**
   * The event time of event `index`: its place in the sequence, less a seeded delay within the out-of-orderness, or
   * `lateBy` less for a late one.
   */
  timeAt(index: number): number {
    const { msPerEvent = 1, outOfOrderness = 0, startAt = EPOCH } = this.config;
    const base = startAt + Math.floor(index * msPerEvent);
    if (this.isLate(index)) return base - this.config.lateBy!;
    return outOfOrderness > 0 ? base - (hash32(this.config.seed, index, 4) % (outOfOrderness + 1)) : base;
  }

  /** Whether event `index` is one of the late ones: every `lateEvery`-th, once the stream is `lateBy` in (never before its start). */
  isLate(index: number): boolean {
    const { msPerEvent = 1, lateEvery = 0, lateBy = 0 } = this.config;
    return lateEvery > 0 && lateBy > 0 && index % lateEvery === lateEvery - 1 && Math.floor(index * msPerEvent) >= lateBy;
  }

  /** Splits that hold events: all but the idle ones. */
  private get activeSplits(): number {
    return this.config.splits - (this.config.idleSplits ?? 0);
  }

  /** The global index of a split's local offset: events are dealt round robin into the splits that hold events. */
  indexOf(split: number, offset: number): number {
    return offset * this.activeSplits + split;
  }

  /** Events split `split` holds in all (Infinity when unbounded; none for an idle split). */
  splitSize(split: number): number {
    const { total } = this.config;
    const active = this.activeSplits;
    if (split >= active) return 0;
    if (total === undefined) return Infinity;
    return Math.max(0, Math.ceil((total - split) / active));
  }

  /** Whether a split is one of the idle ones (it never has events, bounded or not). */
  isIdleSplit(split: number): boolean {
    return split >= this.activeSplits;
  }
}
