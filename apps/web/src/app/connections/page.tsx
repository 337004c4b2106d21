import { connectionKindSchema } from '@keyflow/api';
import { ConnectionsView } from '@/features/connections/ConnectionsView';

export const metadata = { title: 'Connections · Keyflow' };

/** `?new=<kind>` (the builder's link when a field has no connection to pick) opens the form for a new one of that kind. */
export default async function ConnectionsPage({ searchParams }: { searchParams: Promise<{ new?: string | string[] }> }) {
  const kind = connectionKindSchema.safeParse((await searchParams).new);
  return <ConnectionsView newKind={kind.success ? kind.data : undefined} />;
}
