'use client';
import Link from 'next/link';
import { errorMessage } from '@/lib/api';
import { useConnections } from '@/lib/queries';
import type { SettingsField } from './settingsForm';

/**
 * A connector's connection: a select of the stored connections of the kind the field takes. With none of that kind,
 * a link opens the Connections page (in a new tab: the drawing stays) with a new one's form; the list is read again
 * when this tab has the focus back.
 */
export function ConnectionSelect({
  field,
  value,
  onChange,
  ...attrs
}: {
  field: SettingsField;
  value: unknown;
  onChange: (v: string | undefined) => void;
} & Omit<React.SelectHTMLAttributes<HTMLSelectElement>, 'value' | 'onChange'>) {
  const connections = useConnections();
  const kind = field.connectionKind!;
  const offered = connections.data?.filter((c) => c.kind === kind) ?? [];
  const current = typeof value === 'string' ? value : '';
  return (
    <>
      <select {...attrs} data-testid={`connection-select-${field.name}`} value={current} onChange={(e) => onChange(e.target.value || undefined)}>
        <option value="">{field.required ? `Choose a ${kind} connection…` : 'none'}</option>
        {offered.map((c) => (
          <option key={c.id} value={c.name}>
            {c.name} ({c.url})
          </option>
        ))}
        {current && !offered.some((c) => c.name === current) && (
          <option value={current}>
            {current} ({connections.isPending ? 'loading…' : `no ${kind} connection by that name`})
          </option>
        )}
      </select>
      {connections.isSuccess && offered.length === 0 && (
        <span className="help" data-testid={`no-connection-${field.name}`}>
          No {kind} connection yet:{' '}
          <Link href={`/connections?new=${kind}`} target="_blank" rel="noopener">
            make one under Connections
          </Link>
        </span>
      )}
      {connections.isError && <span className="field-error">Could not load the connections: {errorMessage(connections.error)}</span>}
    </>
  );
}
