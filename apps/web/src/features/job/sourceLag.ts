import type { JobMetrics } from '@keyflow/api';
import { formatBytes, formatCount } from '../../lib/format';
import { formatLag } from './watermarks';

type SourceLag = NonNullable<JobMetrics['vertices'][string]['sourceLag']>;

/** A split's or a source's backlog in a few characters: "12.3K msgs · 2.1 s", "4.0 MB", "caught up". */
export function lagText(l: Pick<SourceLag, 'messages' | 'bytes' | 'ms'>): string {
  const parts: string[] = [];
  if (l.messages !== undefined) parts.push(`${formatCount(l.messages)} msg${l.messages === 1 ? '' : 's'}`);
  if (l.bytes !== undefined) parts.push(formatBytes(l.bytes));
  if (l.ms !== undefined) parts.push(formatLag(l.ms));
  if (parts.length === 0) return 'unknown';
  const behind = (l.messages ?? 0) > 0 || (l.bytes ?? 0) > 0 || (l.ms ?? 0) > 0;
  return behind ? parts.join(' · ') : 'caught up';
}

/** What a source's node shows of its backlog, and a tooltip listing every split's; undefined when it reports none. */
export function nodeSourceLag(lag: SourceLag | undefined): { text: string; title: string; behind: boolean } | undefined {
  if (!lag || lag.splits.length === 0) return undefined;
  const text = lagText(lag);
  const title = [
    'Backlog per split (what the broker holds that the source has not emitted yet):',
    ...lag.splits.map((s) => `${s.name}: ${lagText(s)}`),
  ].join('\n');
  return { text, title, behind: text !== 'caught up' };
}
