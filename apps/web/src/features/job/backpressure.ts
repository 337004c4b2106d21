/** Flink's backpressure levels: OK up to 10 % of the time waiting on full channels, LOW up to 50 %, HIGH above. */
export type BackpressureLevel = 'ok' | 'low' | 'high';

export function backpressureLevel(ratio: number | undefined): BackpressureLevel {
  if (ratio === undefined || ratio <= 0.1) return 'ok';
  return ratio <= 0.5 ? 'low' : 'high';
}

export const backpressureColor: Record<BackpressureLevel, string> = { ok: '#2f9e63', low: '#e0a100', high: '#d64545' };

/**
 * Flink's busy colouring: from blue (waiting for input) to red (busy all the time), through violet, so that the
 * operator that limits a job stands out on its graph.
 */
export function busyColor(ratio: number | undefined): string {
  const r = Math.min(1, Math.max(0, ratio ?? 0));
  return `hsl(${Math.round(210 + 150 * r)} 70% 50%)`;
}
