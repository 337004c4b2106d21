'use client';
import { operatorSpec, partitioningSchema, type GraphIssue, type Partitioning } from '@keyflow/core';
import { useEffect, useMemo, useState } from 'react';
import { parallelismLimit, type IssueIndex, type OperatorNode, type PartitionEdge } from './builderGraph';
import { fieldText, parseFieldInput, settingsFields, type SettingsField } from './settingsForm';
import type { Builder } from './useBuilder';

const PARTITIONING_HELP: Record<Partitioning, string> = {
  forward: 'same subtask index; needs equal parallelism (the two may run chained)',
  hash: 'by key → key group → subtask; keyed operators need it',
  rebalance: 'round robin over the next operator’s subtasks',
  broadcast: 'every record to every subtask',
};

function FieldError({ message, id }: { message?: string; id: string }) {
  return message ? (
    <span className="field-error" id={id} role="alert">
      {message}
    </span>
  ) : null;
}

/** A JSON setting (a list of map steps): edited as text, applied once it parses. */
function JsonField({ field, value, onChange, error, inputId }: { field: SettingsField; value: unknown; onChange: (v: unknown) => void; error?: string; inputId: string }) {
  const [text, setText] = useState(() => fieldText(value));
  const [parseError, setParseError] = useState<string>();
  useEffect(() => {
    setText((t) => {
      try {
        return JSON.stringify(JSON.parse(t)) === JSON.stringify(value) ? t : fieldText(value);
      } catch {
        return t;
      }
    });
  }, [value]);
  return (
    <>
      <textarea
        id={inputId}
        rows={6}
        spellCheck={false}
        value={text}
        placeholder={field.name === 'steps' ? '[{ "op": "pick", "fields": ["user", "amount"] }]' : 'JSON'}
        aria-invalid={!!(error || parseError)}
        onChange={(e) => {
          setText(e.target.value);
          if (e.target.value.trim() === '') return setParseError(undefined), onChange(undefined);
          try {
            onChange(JSON.parse(e.target.value));
            setParseError(undefined);
          } catch {
            setParseError('not valid JSON yet');
          }
        }}
      />
      <FieldError id={`${inputId}-error`} message={parseError ?? error} />
    </>
  );
}

function SettingInput({ field, value, onChange, error, inputId }: { field: SettingsField; value: unknown; onChange: (v: unknown) => void; error?: string; inputId: string }) {
  const common = { id: inputId, 'aria-invalid': !!error, 'aria-describedby': error ? `${inputId}-error` : undefined };
  if (field.kind === 'json') return <JsonField field={field} value={value} onChange={onChange} error={error} inputId={inputId} />;
  let input: React.ReactNode;
  if (field.kind === 'enum')
    input = (
      <select {...common} value={fieldText(value ?? field.defaultValue)} onChange={(e) => onChange(e.target.value)}>
        {field.options!.map((o) => (
          <option key={o}>{o}</option>
        ))}
      </select>
    );
  else if (field.kind === 'boolean')
    input = <input {...common} type="checkbox" checked={value === true} onChange={(e) => onChange(e.target.checked)} />;
  else
    input = (
      <input
        {...common}
        type={field.kind === 'integer' || field.kind === 'number' ? 'number' : 'text'}
        step={field.kind === 'integer' ? 1 : 'any'}
        min={field.min}
        max={field.max}
        value={fieldText(value)}
        placeholder={field.defaultValue !== undefined ? `${fieldText(field.defaultValue)} (default)` : field.required ? 'required' : 'optional'}
        onChange={(e) => onChange(parseFieldInput(field, e.target.value))}
      />
    );
  return (
    <>
      {input}
      <FieldError id={`${inputId}-error`} message={error} />
    </>
  );
}

function IssueList({ issues, onSelect }: { issues: GraphIssue[]; onSelect?: (issue: GraphIssue) => void }) {
  if (!issues.length) return null;
  return (
    <ul className="issues">
      {issues.map((i, n) => (
        <li key={n}>
          {onSelect && (i.vertexId || i.edgeId) ? (
            <button type="button" className="link" onClick={() => onSelect(i)}>
              {i.message}
            </button>
          ) : (
            i.message
          )}
        </li>
      ))}
    </ul>
  );
}

function OperatorForm({ node, builder, issues }: { node: OperatorNode; builder: Builder; issues: IssueIndex }) {
  const { vertex } = node.data;
  const spec = operatorSpec(vertex.type);
  const fields = useMemo(() => (spec ? settingsFields(spec.settings) : []), [spec]);
  const errors = issues.fields.get(vertex.id) ?? new Map<string, string>();
  const errorFor = (name: string) => errors.get(name) ?? [...errors].find(([k]) => k.startsWith(`${name}.`))?.[1];
  const fieldless = (issues.vertices.get(vertex.id) ?? []).filter((i) => i.path[0] !== 'vertices' || i.path.length <= 2);
  const limit = parallelismLimit(vertex);
  const setSetting = (name: string, value: unknown) => {
    const settings = { ...vertex.settings };
    if (value === undefined) delete settings[name];
    else settings[name] = value;
    builder.updateVertex(vertex.id, { settings }, `settings.${name}`);
  };
  const id = (name: string) => `field-${vertex.id}-${name}`;

  return (
    <form className="panel-form" onSubmit={(e) => e.preventDefault()} aria-label={`Settings of ${vertex.id}`}>
      <header>
        <h2>{spec?.label ?? vertex.type}</h2>
        <span className={`kind kind-${spec?.kind}`}>{spec?.kind}</span>
        <p className="muted">{spec?.description}</p>
      </header>
      <label htmlFor={id('id')}>Id</label>
      <input id={id('id')} value={vertex.id} readOnly />
      <label htmlFor={id('name')}>Name</label>
      <input
        id={id('name')}
        value={vertex.name ?? ''}
        placeholder={spec?.label}
        maxLength={100}
        onChange={(e) => builder.updateVertex(vertex.id, { name: e.target.value || undefined }, 'name')}
      />
      <label htmlFor={id('parallelism')}>Parallelism</label>
      <input
        id={id('parallelism')}
        data-testid="parallelism"
        type="number"
        min={1}
        max={limit}
        step={1}
        value={vertex.parallelism}
        aria-invalid={!!errors.get('parallelism')}
        onChange={(e) => builder.updateVertex(vertex.id, { parallelism: e.target.value === '' ? 0 : Number(e.target.value) }, 'parallelism')}
      />
      <span className="help">1 to {limit} {vertex.type === 'generator' ? '(its splits)' : '(its maxParallelism)'}</span>
      <FieldError id={`${id('parallelism')}-error`} message={errors.get('parallelism')} />
      {fields.length > 0 && <h3>Settings</h3>}
      {fields.map((f) => (
        <div key={f.name} className="field" data-testid={`setting-${f.name}`}>
          <label htmlFor={id(f.name)}>
            {f.label}
            {f.required && <span className="required"> *</span>}
          </label>
          <SettingInput
            field={f}
            inputId={id(f.name)}
            value={vertex.settings[f.name]}
            error={errorFor(`settings.${f.name}`)}
            onChange={(v) => setSetting(f.name, v)}
          />
          {f.description && <span className="help">{f.description}</span>}
        </div>
      ))}
      <IssueList issues={fieldless} />
      <button type="button" className="danger subtle" onClick={() => builder.remove({ nodes: [vertex.id] })}>
        Delete operator
      </button>
    </form>
  );
}

function EdgeForm({ edge, builder, issues }: { edge: PartitionEdge; builder: Builder; issues: IssueIndex }) {
  const data = edge.data!;
  const found = issues.edges.get(edge.id) ?? [];
  const keyError = found.find((i) => i.path.at(-1) === 'key')?.message;
  const other = found.filter((i) => i.path.at(-1) !== 'key');
  return (
    <form className="panel-form" onSubmit={(e) => e.preventDefault()} aria-label={`Edge ${edge.id}`}>
      <header>
        <h2>Edge</h2>
        <p className="muted">
          {edge.source} → {edge.target}
        </p>
      </header>
      <label htmlFor="edge-partitioning">Partitioning</label>
      <select
        id="edge-partitioning"
        value={data.partitioning}
        onChange={(e) =>
          builder.updateEdge(edge.id, { partitioning: e.target.value as Partitioning, ...(e.target.value === 'hash' && !data.key && { key: 'key' }) })
        }
      >
        {partitioningSchema.options.map((p) => (
          <option key={p} value={p}>
            {p}
          </option>
        ))}
      </select>
      <span className="help">{PARTITIONING_HELP[data.partitioning]}</span>
      {data.partitioning === 'hash' && (
        <>
          <label htmlFor="edge-key">Key field (keyBy)</label>
          <input id="edge-key" value={data.key ?? ''} aria-invalid={!!keyError} onChange={(e) => builder.updateEdge(edge.id, { key: e.target.value }, 'key')} />
          <FieldError id="edge-key-error" message={keyError} />
        </>
      )}
      <IssueList issues={other} />
      <button type="button" className="danger subtle" onClick={() => builder.remove({ edges: [edge.id] })}>
        Delete edge
      </button>
    </form>
  );
}

/** The side panel: the selected operator's or edge's settings with inline errors, or the pipeline's problems. */
export function SettingsPanel({ builder }: { builder: Builder }) {
  const { selectedNode, selectedEdge, issues, doc } = builder;
  return (
    <aside className="side-panel" data-testid="side-panel">
      {selectedNode ? (
        <OperatorForm key={selectedNode.id} node={selectedNode} builder={builder} issues={issues} />
      ) : selectedEdge ? (
        <EdgeForm key={selectedEdge.id} edge={selectedEdge} builder={builder} issues={issues} />
      ) : (
        <div className="panel-form">
          <header>
            <h2>Pipeline</h2>
            <p className="muted">
              {doc.nodes.length} operators, {doc.edges.length} edges. Select an operator or an edge to edit it.
            </p>
          </header>
          {issues.all.length === 0 ? (
            doc.nodes.length > 0 && <p className="ok-text">✓ The pipeline is valid.</p>
          ) : (
            <>
              <h3>
                {issues.all.length} problem{issues.all.length > 1 ? 's' : ''}
              </h3>
              <IssueList issues={issues.all} onSelect={(i) => builder.selectElement(i.vertexId ?? i.edgeId ?? null)} />
            </>
          )}
          <h3>Keyboard</h3>
          <p className="muted small">
            Delete or Backspace removes the selection · Ctrl+Z undo · Ctrl+Shift+Z or Ctrl+Y redo
          </p>
        </div>
      )}
    </aside>
  );
}
