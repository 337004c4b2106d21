import type { JobMetrics } from '@keyflow/api';

// Dead letters on the job page: which operators have any, and their sample records shown short.

export interface OperatorDeadLetters {
  vertexId: string;
  /** Dead letters since the job started: the control plane's running total, across attempts. */
  total: number;
}

/**
 * The operators with dead letters, in the graph's order (`vertexOrder`; others after it). A hash edge's
 * producer counts the records without the key field for the consumer, so the consumer is the one listed.
 */
export function operatorsWithDeadLetters(metrics: JobMetrics | null | undefined, vertexOrder: readonly string[] = []): OperatorDeadLetters[] {
  const rank = (id: string) => {
    const i = vertexOrder.indexOf(id);
    return i < 0 ? vertexOrder.length : i;
  };
  return Object.entries(metrics?.vertices ?? {})
    .filter(([, m]) => m.deadLetters > 0)
    .map(([vertexId, m]) => ({ vertexId, total: m.deadLetters }))
    .sort((a, b) => rank(a.vertexId) - rank(b.vertexId) || a.vertexId.localeCompare(b.vertexId));
}

export interface RecordPreview {
  /** One line of JSON, at most `max` characters (with an ellipsis when cut). */
  text: string;
  /** The whole JSON, for a tooltip or an expanded view (itself capped, so a huge record cannot stall the page). */
  full: string;
  truncated: boolean;
}

const FULL_CAP = 10_000;

/** A dead-lettered record as JSON cut to `max` characters; records that are no JSON value show as text. */
export function recordPreview(record: unknown, max = 200): RecordPreview {
  let json: string;
  try {
    json = record === undefined ? 'undefined' : (JSON.stringify(record) ?? String(record));
  } catch {
    json = String(record);
  }
  const full = json.length > FULL_CAP ? `${json.slice(0, FULL_CAP)}…` : json;
  if (json.length <= max) return { text: json, full, truncated: false };
  return { text: `${json.slice(0, Math.max(1, max - 1))}…`, full, truncated: true };
}
