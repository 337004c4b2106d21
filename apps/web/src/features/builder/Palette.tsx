'use client';
import { operatorCatalog, operatorSpec, type OperatorSpec } from '@keyflow/core';
import { useMemo, useState } from 'react';
import { useUserOperators } from '@/lib/userOperators';

/** The MIME type a palette item carries while dragged onto the canvas. */
export const OPERATOR_MIME = 'application/x-keyflow-operator';

type GroupId = OperatorSpec['kind'] | 'user';

const GROUPS: { id: GroupId; title: string }[] = [
  { id: 'source', title: 'Sources' },
  { id: 'transform', title: 'Transforms' },
  { id: 'keyed', title: 'Keyed' },
  { id: 'sink', title: 'Sinks' },
  { id: 'user', title: 'Your operators' },
];

const matches = (s: OperatorSpec, q: string) =>
  !q || [s.type, s.label, s.description, s.kind, s.version ?? ''].some((t) => t.toLowerCase().includes(q));

function PaletteItem({ spec, onAdd }: { spec: OperatorSpec; onAdd: (type: string) => void }) {
  return (
    <div
      className={`palette-item op-${spec.kind}`}
      data-testid={`palette-${spec.type}`}
      draggable
      tabIndex={0}
      role="button"
      aria-label={`Add ${spec.label}`}
      title={`${spec.description}\nDrag onto the canvas, or press Enter`}
      onDragStart={(e) => {
        e.dataTransfer.setData(OPERATOR_MIME, spec.type);
        e.dataTransfer.effectAllowed = 'move';
      }}
      onDoubleClick={() => onAdd(spec.type)}
      onKeyDown={(e) => e.key === 'Enter' && onAdd(spec.type)}
    >
      <strong>{spec.label}</strong>
      <span>{spec.description}</span>
      {spec.version && (
        <code className="op-version" title={`${spec.kind} · the version a job deployed now runs`}>
          {spec.version}
        </code>
      )}
    </div>
  );
}

/**
 * The operators, grouped by kind and searchable, the control plane's user operators (KEYFLOW_OPERATORS) in a group
 * of their own; drag one onto the canvas, or press Enter on it to add it.
 */
export function Palette({ onAdd }: { onAdd: (type: string) => void }) {
  const [query, setQuery] = useState('');
  const listed = useUserOperators().data;
  const groups = useMemo(() => {
    const q = query.trim().toLowerCase();
    const builtIns: OperatorSpec[] = Object.values(operatorCatalog);
    const user = (listed ?? []).flatMap((o) => operatorSpec(o.type) ?? []);
    return GROUPS.map((g) => ({
      ...g,
      specs: (g.id === 'user' ? user : builtIns.filter((s) => s.kind === g.id)).filter((s) => matches(s, q)),
    })).filter((g) => g.specs.length);
  }, [query, listed]);

  return (
    <aside className="palette" aria-label="Operators">
      <input type="search" placeholder="Search operators" aria-label="Search operators" value={query} onChange={(e) => setQuery(e.target.value)} />
      {groups.length === 0 && <p className="muted">No operator matches “{query}”.</p>}
      {groups.map((g) => (
        <section key={g.id} data-testid={`palette-group-${g.id}`}>
          <h3>{g.title}</h3>
          {g.specs.map((s) => (
            <PaletteItem key={s.type} spec={s} onAdd={onAdd} />
          ))}
        </section>
      ))}
    </aside>
  );
}
