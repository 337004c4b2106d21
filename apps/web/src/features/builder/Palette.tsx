'use client';
import { operatorCatalog, type OperatorKind } from '@keyflow/core';
import { useMemo, useState } from 'react';

/** The MIME type a palette item carries while dragged onto the canvas. */
export const OPERATOR_MIME = 'application/x-keyflow-operator';

const GROUPS: { kind: OperatorKind; title: string }[] = [
  { kind: 'source', title: 'Sources' },
  { kind: 'transform', title: 'Transforms' },
  { kind: 'keyed', title: 'Keyed' },
  { kind: 'sink', title: 'Sinks' },
];

/** The operators, grouped by kind and searchable; drag one onto the canvas, or press Enter on it to add it. */
export function Palette({ onAdd }: { onAdd: (type: string) => void }) {
  const [query, setQuery] = useState('');
  const groups = useMemo(() => {
    const q = query.trim().toLowerCase();
    const specs = Object.values(operatorCatalog).filter(
      (s) => !q || [s.type, s.label, s.description, s.kind].some((t) => t.toLowerCase().includes(q)),
    );
    return GROUPS.map((g) => ({ ...g, specs: specs.filter((s) => s.kind === g.kind) })).filter((g) => g.specs.length);
  }, [query]);

  return (
    <aside className="palette" aria-label="Operators">
      <input type="search" placeholder="Search operators" aria-label="Search operators" value={query} onChange={(e) => setQuery(e.target.value)} />
      {groups.length === 0 && <p className="muted">No operator matches “{query}”.</p>}
      {groups.map((g) => (
        <section key={g.kind}>
          <h3>{g.title}</h3>
          {g.specs.map((s) => (
            <div
              key={s.type}
              className={`palette-item op-${s.kind}`}
              data-testid={`palette-${s.type}`}
              draggable
              tabIndex={0}
              role="button"
              aria-label={`Add ${s.label}`}
              title={`${s.description}\nDrag onto the canvas, or press Enter`}
              onDragStart={(e) => {
                e.dataTransfer.setData(OPERATOR_MIME, s.type);
                e.dataTransfer.effectAllowed = 'move';
              }}
              onDoubleClick={() => onAdd(s.type)}
              onKeyDown={(e) => e.key === 'Enter' && onAdd(s.type)}
            >
              <strong>{s.label}</strong>
              <span>{s.description}</span>
            </div>
          ))}
        </section>
      ))}
    </aside>
  );
}
