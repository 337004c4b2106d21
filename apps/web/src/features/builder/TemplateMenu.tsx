'use client';
import { pipelineTemplates } from '@keyflow/core';
import Link from 'next/link';
import { Fragment, useRef } from 'react';

/** The builder's address for a new pipeline from a template: its graph on the canvas, unsaved, named after it. */
export const templateHref = (id: string) => `/pipelines/new?template=${encodeURIComponent(id)}`;

/** "New from template": a menu of core's pipeline templates, each opening the builder with its graph. */
export function TemplateMenu({ align = 'left' }: { align?: 'left' | 'right' }) {
  const menu = useRef<HTMLDetailsElement>(null);
  // A pick closes the menu (the builder may stay on this page when the leave guard keeps it).
  const close = () => menu.current?.removeAttribute('open');
  return (
    <details className={`menu menu-${align}`} ref={menu} data-testid="template-menu">
      <summary className="button">New from template ▾</summary>
      <ul className="menu-list" aria-label="Pipeline templates">
        {pipelineTemplates.map((t, i) => (
          <Fragment key={t.id}>
            {t.group && t.group !== pipelineTemplates[i - 1]?.group && (
              <li className="menu-heading muted small" role="presentation">
                {t.group}
              </li>
            )}
            <li>
              <Link href={templateHref(t.id)} onClick={close} data-testid={`template-${t.id}`}>
                <strong>{t.name}</strong>
                <span className="muted small">{t.description}</span>
              </Link>
            </li>
          </Fragment>
        ))}
      </ul>
    </details>
  );
}
