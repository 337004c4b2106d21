'use client';
import { maxParallelismOf, operatorSpec, partitioningSchema, type GraphIssue, type Partitioning } from '@keyflow/core';
import { edgeFields, toGraph, type IssueIndex, type OperatorNode, type PartitionEdge } from './builderGraph';
import { ConnectionSelect } from './ConnectionSelect';
import { parallelismRule, type DraftField } from './fieldDrafts';
import { durationReadout, fieldText, parseFieldInput, settingsFieldsOf, type SettingsField } from './settingsForm';
import type { Builder } from './useBuilder';
import { keyWarning, sideOutputWarning } from './warnings';

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

function FieldWarning({ message, testId }: { message?: string; testId: string }) {
  return message ? (
    <span className="warn-text small" role="status" data-testid={testId}>
      ⚠ {message}
    </span>
  ) : null;
}

interface TextProps {
  /** What the field shows: the text as typed, else the value's own text. */
  text: string;
  onText: (text: string) => void;
  onLeave: () => void;
}

function SettingInput({
  field,
  value,
  onChange,
  typed,
  error,
  inputId,
}: {
  field: SettingsField;
  value: unknown;
  onChange: (v: unknown) => void;
  typed: TextProps;
  error?: string;
  inputId: string;
}) {
  const common = { id: inputId, 'aria-invalid': !!error, 'aria-describedby': error ? `${inputId}-error` : undefined };
  let input: React.ReactNode;
  // JSON keeps the text as typed, layout included, even once it parses: no re-formatting when the field is left.
  if (field.kind === 'json')
    input = (
      <textarea
        {...common}
        rows={6}
        spellCheck={false}
        value={typed.text}
        placeholder={field.name === 'steps' ? '[{ "op": "pick", "fields": ["user", "amount"] }]' : 'JSON'}
        onChange={(e) => typed.onText(e.target.value)}
      />
    );
  else if (field.kind === 'enum')
    input = (
      <select {...common} value={fieldText(value ?? field.defaultValue)} onChange={(e) => onChange(e.target.value)}>
        {field.options!.map((o) => (
          <option key={o}>{o}</option>
        ))}
      </select>
    );
  else if (field.kind === 'connection') input = <ConnectionSelect {...common} field={field} value={value} onChange={onChange} />;
  else if (field.kind === 'boolean')
    input = <input {...common} type="checkbox" checked={value === true} onChange={(e) => onChange(e.target.checked)} />;
  else
    input = (
      <input
        {...common}
        type="text"
        inputMode={field.kind === 'integer' ? 'numeric' : field.kind === 'number' ? 'decimal' : undefined}
        spellCheck={field.kind === 'duration' ? false : undefined}
        value={typed.text}
        placeholder={field.defaultValue !== undefined ? `${fieldText(field.defaultValue)} (default)` : field.required ? 'required' : 'optional'}
        onChange={(e) => typed.onText(e.target.value)}
        onBlur={typed.onLeave}
      />
    );
  // A duration says what it reads as while its text is a valid one: "10s = 10,000 ms".
  const readout = field.kind === 'duration' && parseFieldInput(field, typed.text).ok ? durationReadout(typed.text) : undefined;
  return (
    <>
      {input}
      {readout && (
        <span className="help duration-readout" data-testid={`duration-readout-${field.name}`}>
          {readout}
        </span>
      )}
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

function OperatorForm({
  node,
  builder,
  issues,
  poolWarning,
  readOnly,
}: {
  node: OperatorNode;
  builder: Builder;
  issues: IssueIndex;
  poolWarning?: string;
  readOnly: boolean;
}) {
  const { vertex, drafts } = node.data;
  const spec = operatorSpec(vertex.type);
  const fields = settingsFieldsOf(vertex.type);
  const errors = issues.fields.get(vertex.id) ?? new Map<string, string>();
  const errorFor = (name: string) => errors.get(name) ?? [...errors].find(([k]) => k.startsWith(`${name}.`))?.[1];
  const fieldless = (issues.vertices.get(vertex.id) ?? []).filter((i) => i.path[0] !== 'vertices' || i.path.length <= 2);
  const { max } = parallelismRule(vertex);
  const typed = (field: DraftField, value: unknown): TextProps => ({
    text: drafts?.[field] ?? fieldText(value),
    onText: (text) => builder.typeField(vertex.id, field, text),
    onLeave: () => builder.leaveField(vertex.id, field),
  });
  const parallelism = typed('parallelism', vertex.parallelism);
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
        {spec?.version && (
          <code className="op-version" data-testid="operator-version" title="Your operator, at the version a job deployed now runs">
            {spec.version}
          </code>
        )}
        <p className="muted">{spec?.description}</p>
        <FieldWarning testId="side-output-warning" message={spec?.outputs ? sideOutputWarning(toGraph(builder.doc), vertex.id) : undefined} />
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
        type="text"
        inputMode="numeric"
        value={parallelism.text}
        aria-invalid={!!errors.get('parallelism')}
        aria-describedby={errors.get('parallelism') ? `${id('parallelism')}-error` : undefined}
        onChange={(e) => parallelism.onText(e.target.value)}
        onBlur={parallelism.onLeave}
      />
      <span className="help">
        1 to {max}{' '}
        {spec?.kind === 'source' && spec.splits
          ? '(its splits)'
          : `· once deployed it can rescale up to ${maxParallelismOf(vertex)} (its maxParallelism)`}
      </span>
      <FieldError id={`${id('parallelism')}-error`} message={errors.get('parallelism')} />
      <FieldWarning testId="parallelism-warning" message={poolWarning} />
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
            typed={typed(`settings.${f.name}`, vertex.settings[f.name])}
            error={errorFor(`settings.${f.name}`)}
            onChange={(v) => setSetting(f.name, v)}
          />
          {f.description && <span className="help">{f.description}</span>}
        </div>
      ))}
      <IssueList issues={fieldless} />
      {!readOnly && (
        <button type="button" className="danger subtle" onClick={() => builder.remove({ nodes: [vertex.id] })}>
          Delete operator
        </button>
      )}
    </form>
  );
}

function EdgeForm({ edge, builder, issues, readOnly }: { edge: PartitionEdge; builder: Builder; issues: IssueIndex; readOnly: boolean }) {
  const data = edge.data!;
  const found = issues.edges.get(edge.id) ?? [];
  const keyError = found.find((i) => i.path.at(-1) === 'key')?.message;
  const other = found.filter((i) => i.path.at(-1) !== 'key');
  const graph = toGraph(builder.doc);
  const carried = { from: edge.source, ...(data.output && { output: data.output }) };
  const fields = edgeFields(graph, carried);
  const warning = keyWarning(graph, { ...carried, partitioning: data.partitioning, key: data.key });
  return (
    <form className="panel-form" onSubmit={(e) => e.preventDefault()} aria-label={`Edge ${edge.id}`}>
      <header>
        <h2>Edge</h2>
        <p className="muted">
          {edge.source} → {edge.target}
          {data.output && <span data-testid="edge-output"> · from its {data.output} output</span>}
          {data.side && <span data-testid="edge-side"> · its {data.side} input</span>}
        </p>
      </header>
      <label htmlFor="edge-partitioning">Partitioning</label>
      <select
        id="edge-partitioning"
        value={data.partitioning}
        onChange={(e) => builder.updateEdge(edge.id, { partitioning: e.target.value as Partitioning })}
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
          <input
            id="edge-key"
            list="edge-key-fields"
            value={data.key ?? ''}
            placeholder="a field of the records"
            aria-invalid={!!keyError}
            aria-describedby={keyError ? 'edge-key-error' : undefined}
            onChange={(e) => builder.updateEdge(edge.id, { key: e.target.value }, 'key')}
          />
          <datalist id="edge-key-fields">
            {fields?.map((f) => (
              <option key={f} value={f} />
            ))}
          </datalist>
          {fields && (
            <span className="help" data-testid="edge-key-fields">
              {fields.length ? `${edge.source} emits ${fields.join(', ')}` : `${edge.source} emits no field the catalog knows of`}
            </span>
          )}
          <FieldError id="edge-key-error" message={keyError} />
          <FieldWarning testId="edge-key-warning" message={warning} />
        </>
      )}
      <IssueList issues={other} />
      {!readOnly && (
        <button type="button" className="danger subtle" onClick={() => builder.remove({ edges: [edge.id] })}>
          Delete edge
        </button>
      )}
    </form>
  );
}

/** The side panel: the selected operator's or edge's settings with inline errors and warnings, or the pipeline's problems. */
/** The side panel: the selection's settings, or the pipeline's problems. Read-only, it shows the settings and changes nothing. */
export function SettingsPanel({ builder, poolWarning, readOnly = false }: { builder: Builder; poolWarning?: string; readOnly?: boolean }) {
  const { selectedNode, selectedEdge, issues, doc } = builder;
  const form = selectedNode ? (
    <OperatorForm key={selectedNode.id} node={selectedNode} builder={builder} issues={issues} poolWarning={poolWarning} readOnly={readOnly} />
  ) : selectedEdge ? (
    <EdgeForm key={selectedEdge.id} edge={selectedEdge} builder={builder} issues={issues} readOnly={readOnly} />
  ) : undefined;
  return (
    <aside className="side-panel" data-testid="side-panel">
      {form ? (
        <fieldset className="plain-fieldset" disabled={readOnly}>
          {form}
        </fieldset>
      ) : (
        <div className="panel-form">
          <header>
            <h2>Pipeline</h2>
            <p className="muted">
              {doc.nodes.length} operators, {doc.edges.length} edges. Select an operator or an edge to {readOnly ? 'see its settings' : 'edit it'}.
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
          {!readOnly && (
            <>
              <h3>Keyboard</h3>
              <p className="muted small">Delete or Backspace removes the selection · Ctrl+Z undo · Ctrl+Shift+Z or Ctrl+Y redo</p>
            </>
          )}
        </div>
      )}
    </aside>
  );
}
