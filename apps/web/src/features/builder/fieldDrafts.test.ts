import { describe, expect, it } from 'vitest';
import { emptyDoc, newOperatorNode, type BuilderDoc } from './builderGraph';
import { draftIssues, parallelismRule, settleDraft, typeInto, type DraftField } from './fieldDrafts';

function doc(...types: string[]): BuilderDoc {
  let d = emptyDoc;
  for (const type of types) d = { ...d, nodes: [...d.nodes, newOperatorNode(type, { x: 0, y: 0 }, d)] };
  return d;
}

/** Types each text in turn into a field, as keystrokes after select-all would. */
const typing = (d: BuilderDoc, id: string, field: DraftField, ...texts: string[]) => texts.reduce((x, t) => typeInto(x, id, field, t), d);
const vertex = (d: BuilderDoc, id: string) => d.nodes.find((n) => n.id === id)!.data.vertex;
const drafts = (d: BuilderDoc, id: string) => d.nodes.find((n) => n.id === id)!.data.drafts;

describe('typing into an operator’s fields', () => {
  it('-2 into parallelism keeps the text, leaves the value and says why; it never becomes 02', () => {
    const d = typing(doc('count'), 'count', 'parallelism', '-', '-2');
    expect(vertex(d, 'count').parallelism).toBe(1);
    expect(drafts(d, 'count')).toEqual({ parallelism: '-2' });
    expect(draftIssues(d)).toEqual([{ path: ['vertices', 0, 'parallelism'], vertexId: 'count', message: 'a whole number from 1 to 32768' }]);
  });

  it('1.5 into parallelism asks for a whole number', () => {
    const d = typing(doc('count'), 'count', 'parallelism', '1', '1.', '1.5');
    expect(vertex(d, 'count').parallelism).toBe(1);
    expect(draftIssues(d).map((i) => i.message)).toEqual(['a whole number from 1 to 32768']);
  });

  it('a valid text sets the value as it is typed, and gives way to it once the field is left', () => {
    const d = typing(doc('count'), 'count', 'parallelism', '1', '12');
    expect(vertex(d, 'count').parallelism).toBe(12);
    expect(draftIssues(d)).toEqual([]);
    const left = settleDraft(typing(d, 'count', 'parallelism', '012'), 'count', 'parallelism');
    expect(drafts(left, 'count')).toEqual({});
    expect(vertex(left, 'count').parallelism).toBe(12);
  });

  it('a cleared parallelism is required and stays so when the field is left', () => {
    const d = settleDraft(typing(doc('count'), 'count', 'parallelism', ''), 'count', 'parallelism');
    expect(drafts(d, 'count')).toEqual({ parallelism: '' });
    expect(draftIssues(d).map((i) => i.message)).toEqual(['required']);
  });

  it('a source’s parallelism is bounded by its splits', () => {
    const d = typing(doc('generator'), 'generator', 'settings.splits', '4');
    expect(parallelismRule(vertex(d, 'generator')).max).toBe(4);
    expect(draftIssues(typing(d, 'generator', 'parallelism', '5')).map((i) => i.message)).toEqual(['a whole number from 1 to 4']);
  });

  it('a number setting: an invalid text leaves the setting as it was, a cleared one leaves it out', () => {
    let d = typing(doc('generator'), 'generator', 'settings.rate', '5', '50');
    expect(vertex(d, 'generator').settings).toEqual({ rate: 50 });
    d = typing(d, 'generator', 'settings.rate', '-5');
    expect(vertex(d, 'generator').settings).toEqual({ rate: 50 });
    expect(draftIssues(d)).toEqual([{ path: ['vertices', 0, 'settings', 'rate'], vertexId: 'generator', message: 'at least 0' }]);
    d = typing(d, 'generator', 'settings.rate', '');
    expect(vertex(d, 'generator').settings).toEqual({});
    expect(draftIssues(d)).toEqual([]);
  });

  it('a scalar keeps its text while it is typed: 1. does not become 1 in the field', () => {
    const d = typing(doc('filter'), 'filter', 'settings.value', '1', '1.');
    expect(drafts(d, 'filter')).toEqual({ 'settings.value': '1.' });
    expect(vertex(typing(d, 'filter', 'settings.value', '1.5'), 'filter').settings).toEqual({ value: 1.5 });
  });

  it('map steps that are not valid JSON yet keep the steps as they were, and say so', () => {
    let d = typing(doc('map'), 'map', 'settings.steps', '[{"op":"drop","fields":["ts"]}]');
    expect(vertex(d, 'map').settings).toEqual({ steps: [{ op: 'drop', fields: ['ts'] }] });
    d = typing(d, 'map', 'settings.steps', '[{"op":"drop","fields":["ts"]}');
    expect(vertex(d, 'map').settings).toEqual({ steps: [{ op: 'drop', fields: ['ts'] }] });
    expect(draftIssues(d).map((i) => i.message)).toEqual(['not valid JSON yet']);
  });

  it('a duration setting keeps the typed text as its value; one that is no duration blocks like a wrong number', () => {
    let d = typing(doc('window'), 'window', 'settings.size', '1', '10', '10s');
    expect(vertex(d, 'window').settings).toEqual({ size: '10s' });
    expect(draftIssues(d)).toEqual([]);
    d = typing(d, 'window', 'settings.size', '10x');
    expect(vertex(d, 'window').settings).toEqual({ size: '10s' });
    expect(draftIssues(d)).toEqual([
      { path: ['vertices', 0, 'settings', 'size'], vertexId: 'window', message: 'a duration such as 500ms, 10s, 1m or 1.5h' },
    ]);
    expect(settleDraft(d, 'window', 'settings.size')).toBe(d);
    d = settleDraft(typing(d, 'window', 'settings.size', ' 2m '), 'window', 'settings.size');
    expect(vertex(d, 'window').settings).toEqual({ size: '2m' });
    expect(drafts(d, 'window')).toEqual({});
  });

  it('only the operator typed into changes', () => {
    const d = doc('generator', 'count');
    const typed = typeInto(d, 'count', 'parallelism', '3');
    expect(typed.nodes[0]).toBe(d.nodes[0]);
    expect(settleDraft(d, 'count', 'parallelism')).toBe(d);
  });
});
