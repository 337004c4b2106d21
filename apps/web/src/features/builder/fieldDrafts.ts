import { maxParallelismOf, UPPER_BOUND_MAX_PARALLELISM, type GraphIssue } from '@keyflow/core';
import type { BuilderDoc, VertexDraft } from './builderGraph';
import { parseNumber, type NumberRule, type Parsed } from './numberInput';
import { parseFieldInput, settingsFieldsOf } from './settingsForm';

// An operator's typed fields keep the text as typed (its node's `drafts`), so a field never shows a re-formatted
// or substituted value; only text that parses to a valid value reaches the vertex. Text that does not is an issue
// that blocks saving and deploying until it is fixed.

/** A field typed as text: the parallelism or a setting, named as validateGraph's issue paths name them. */
export type DraftField = 'parallelism' | `settings.${string}`;

/** The parallelism an operator may have: up to its splits (a source) or the largest maxParallelism it could get. */
export function parallelismRule(vertex: Pick<VertexDraft, 'type' | 'maxParallelism' | 'settings'>): NumberRule {
  return { integer: true, min: 1, max: maxParallelismOf({ ...vertex, parallelism: UPPER_BOUND_MAX_PARALLELISM }), required: true };
}

/** What text typed into an operator's field stands for, or why it stands for no valid value. */
export function parseField(vertex: VertexDraft, field: DraftField, text: string): Parsed<unknown> {
  if (field === 'parallelism') return parseNumber(text, parallelismRule(vertex));
  const setting = settingsFieldsOf(vertex.type).find((f) => `settings.${f.name}` === field);
  return setting ? parseFieldInput(setting, text) : { ok: false, message: 'not a setting of this operator' };
}

function withValue(vertex: VertexDraft, field: DraftField, value: unknown): VertexDraft {
  if (field === 'parallelism') return typeof value === 'number' ? { ...vertex, parallelism: value } : vertex;
  const settings = { ...vertex.settings };
  const name = field.slice('settings.'.length);
  if (value === undefined) delete settings[name];
  else settings[name] = value;
  return { ...vertex, settings };
}

/** The canvas after `text` is typed into an operator's field: the text kept as typed, its value set if it is valid. */
export function typeInto(doc: BuilderDoc, vertexId: string, field: DraftField, text: string): BuilderDoc {
  return {
    ...doc,
    nodes: doc.nodes.map((n) => {
      if (n.id !== vertexId) return n;
      const parsed = parseField(n.data.vertex, field, text);
      const vertex = parsed.ok ? withValue(n.data.vertex, field, parsed.value) : n.data.vertex;
      return { ...n, data: { ...n.data, vertex, drafts: { ...n.data.drafts, [field]: text } } };
    }),
  };
}

/** The canvas once a field is left: valid text gives way to its value's own text; invalid text stays to be fixed. */
export function settleDraft(doc: BuilderDoc, vertexId: string, field: DraftField): BuilderDoc {
  const node = doc.nodes.find((n) => n.id === vertexId);
  const text = node?.data.drafts?.[field];
  if (!node || text === undefined || !parseField(node.data.vertex, field, text).ok) return doc;
  const { [field]: _, ...drafts } = node.data.drafts!;
  return { ...doc, nodes: doc.nodes.map((n) => (n === node ? { ...n, data: { ...n.data, drafts } } : n)) };
}

/** Every typed text that stands for no valid value, as an issue on its operator's field. */
export function draftIssues(doc: BuilderDoc): GraphIssue[] {
  return doc.nodes.flatMap((n, i) =>
    Object.entries(n.data.drafts ?? {}).flatMap(([field, text]) => {
      const parsed = parseField(n.data.vertex, field as DraftField, text);
      return parsed.ok ? [] : [{ path: ['vertices', i, ...field.split('.')], vertexId: n.id, message: parsed.message }];
    }),
  );
}
