'use client';
import { useId } from 'react';

export interface Tab<T extends string> {
  id: T;
  title: string;
  /** A figure shown beside the title (a count); none when undefined or 0. */
  count?: number;
  /** The count is bad news (dead letters), shown in red. */
  alarm?: boolean;
}

/** A tab list and the selected tab's panel (WAI-ARIA tabs: arrow keys move between tabs, only the chosen one renders). */
export function Tabs<T extends string>(props: {
  label: string;
  tabs: readonly Tab<T>[];
  selected: T;
  onSelect: (id: T) => void;
  children: React.ReactNode;
}) {
  const base = useId();
  const tabId = (id: T) => `${base}-tab-${id}`;
  const onKeyDown = (e: React.KeyboardEvent) => {
    const step = e.key === 'ArrowRight' ? 1 : e.key === 'ArrowLeft' ? -1 : 0;
    if (!step) return;
    e.preventDefault();
    const index = props.tabs.findIndex((t) => t.id === props.selected);
    const next = props.tabs[(index + step + props.tabs.length) % props.tabs.length]!;
    props.onSelect(next.id);
    document.getElementById(tabId(next.id))?.focus();
  };
  return (
    <>
      <div className="tabs" role="tablist" aria-label={props.label} onKeyDown={onKeyDown}>
        {props.tabs.map((t) => (
          <button
            key={t.id}
            type="button"
            role="tab"
            id={tabId(t.id)}
            data-testid={`tab-${t.id}`}
            aria-selected={t.id === props.selected}
            aria-controls={`${base}-panel`}
            tabIndex={t.id === props.selected ? 0 : -1}
            onClick={() => props.onSelect(t.id)}
          >
            {t.title}
            {!!t.count && <span className={`tab-count${t.alarm ? ' alarm' : ''}`}>{t.count.toLocaleString('en-US')}</span>}
          </button>
        ))}
      </div>
      <div className="tab-panel" role="tabpanel" id={`${base}-panel`} aria-labelledby={tabId(props.selected)}>
        {props.children}
      </div>
    </>
  );
}
