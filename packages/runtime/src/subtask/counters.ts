import type { VertexMetrics } from '../protocol.ts';

/** How many dead-letter samples per operator wait for the next metrics report at most. */
const SAMPLES = 100;

/**
 * Per operator of the chain, what it did since the last metrics report (records in and out, dead letters),
 * and samples of its dead letters with the reason, for the job's dead-letter view (DESIGN §7).
 */
export class Counters {
  private readonly metrics = new Map<string, VertexMetrics>();
  private readonly samples = new Map<string, string[]>();
  private readonly lateSamples = new Map<string, string[]>();

  /** The counters of operator `vertexId`, made on first use. */
  of(vertexId: string): VertexMetrics {
    let m = this.metrics.get(vertexId);
    if (!m) this.metrics.set(vertexId, (m = { recordsIn: 0, recordsOut: 0, deadLetters: 0, lateRecords: 0 }));
    return m;
  }

  /** Counts a record operator `vertexId` could not take (it may run in another chain: a hash route's consumer). */
  deadLetter(vertexId: string, record: unknown, reason: string): void {
    this.of(vertexId).deadLetters++;
    sample(this.samples, vertexId, record, reason);
  }

  /** Counts a record operator `vertexId` took too late for any of its windows (its late output, DESIGN §11). */
  late(vertexId: string, record: unknown, reason: string): void {
    this.of(vertexId).lateRecords!++;
    sample(this.lateSamples, vertexId, record, reason);
  }

  /** The counts since the last take, zeroing them. */
  takeMetrics(): Record<string, VertexMetrics> {
    const out: Record<string, VertexMetrics> = {};
    for (const [id, m] of this.metrics) {
      out[id] = { ...m };
      m.recordsIn = m.recordsOut = m.deadLetters = m.lateRecords = 0;
    }
    return out;
  }

  /** The dead-letter samples since the last take, by operator. */
  takeSamples(): Map<string, string[]> {
    const out = new Map(this.samples);
    this.samples.clear();
    return out;
  }

  /** The late-record samples since the last take, by operator. */
  takeLateSamples(): Map<string, string[]> {
    const out = new Map(this.lateSamples);
    this.lateSamples.clear();
    return out;
  }
}

function sample(into: Map<string, string[]>, vertexId: string, record: unknown, reason: string): void {
  let samples = into.get(vertexId);
  if (!samples) into.set(vertexId, (samples = []));
  if (samples.length < SAMPLES) samples.push(JSON.stringify({ at: Date.now(), reason, record: safeJson(record) }));
}

function safeJson(v: unknown): unknown {
  try {
    return JSON.parse(JSON.stringify(v, (_, x) => (typeof x === 'bigint' ? x.toString() : x)) ?? 'null');
  } catch {
    return String(v);
  }
}
