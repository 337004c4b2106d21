'use client';
import type { Partitioning } from '@keyflow/core';
import {
  addEdge,
  applyEdgeChanges,
  applyNodeChanges,
  useReactFlow,
  type Connection,
  type EdgeChange,
  type FinalConnectionState,
  type IsValidConnection,
  type NodeChange,
} from '@xyflow/react';
import { useCallback, useEffect, useMemo, useReducer, useRef, useState } from 'react';
import {
  connectionEnds,
  connectionOf,
  connectionRefusal,
  defaultEdge,
  edgeLabel,
  indexIssues,
  newOperatorNode,
  toFlowEdge,
  toGraph,
  type BuilderDoc,
  type OperatorNode,
  type PartitionEdge,
  type VertexDraft,
} from './builderGraph';
import { settleDraft, typeInto, type DraftField } from './fieldDrafts';
import { canRedo, canUndo, commit, redo, startHistory, transient, undo, type History } from './history';
import { layoutDoc, NODE_SIZE } from './layout';

type Action =
  | { type: 'transient' | 'commit'; update: (doc: BuilderDoc) => BuilderDoc; coalesce?: string }
  | { type: 'undo' | 'redo' }
  | { type: 'load'; doc: BuilderDoc };

function reducer(h: History<BuilderDoc>, action: Action): History<BuilderDoc> {
  switch (action.type) {
    case 'transient':
      return transient(h, action.update(h.present));
    case 'commit': {
      const next = action.update(h.present);
      return next === h.present ? h : commit(h, next, action.coalesce);
    }
    case 'undo':
      return undo(h);
    case 'redo':
      return redo(h);
    case 'load':
      return startHistory(action.doc);
  }
}

const select = <T extends { id: string; selected?: boolean }>(items: T[], id: string | null) =>
  items.map((x) => (!!x.selected === (x.id === id) ? x : { ...x, selected: x.id === id }));

/** Whether focus is in a text field, where keys belong to the field (its own undo, Backspace). */
const typing = (target: EventTarget | null) =>
  target instanceof HTMLElement && (target.isContentEditable || ['INPUT', 'TEXTAREA', 'SELECT'].includes(target.tagName));

/**
 * The builder canvas's state and handlers: nodes and edges with undo and redo, connections checked with core's
 * graph rules as they are dragged, drops from the palette, and the live validation of the whole graph.
 */
export function useBuilder(initial: BuilderDoc) {
  const [history, dispatch] = useReducer(reducer, initial, startHistory);
  const doc = history.present;
  const flow = useReactFlow<OperatorNode, PartitionEdge>();
  const [refusal, setRefusal] = useState<string>();
  const refusalTimer = useRef<ReturnType<typeof setTimeout>>(undefined);
  const docRef = useRef(doc);
  docRef.current = doc;

  const issues = useMemo(() => indexIssues({ nodes: doc.nodes, edges: doc.edges }), [doc.nodes, doc.edges]);

  const onNodesChange = useCallback((changes: NodeChange<OperatorNode>[]) => {
    const removed = new Set(changes.flatMap((c) => (c.type === 'remove' ? [c.id] : [])));
    const step = changes.some(
      (c) => c.type === 'remove' || c.type === 'add' || c.type === 'replace' || (c.type === 'position' && c.dragging === false),
    );
    dispatch({
      type: step ? 'commit' : 'transient',
      update: (d) => ({
        nodes: applyNodeChanges(changes, d.nodes),
        // An operator takes its edges with it, in the same undo step.
        edges: removed.size ? d.edges.filter((e) => !removed.has(e.source) && !removed.has(e.target)) : d.edges,
      }),
    });
  }, []);

  const onEdgesChange = useCallback((changes: EdgeChange<PartitionEdge>[]) => {
    const step = changes.some((c) => c.type === 'remove' || c.type === 'add' || c.type === 'replace');
    dispatch({
      type: step ? 'commit' : 'transient',
      update: (d) => {
        const live = changes.filter((c) => c.type !== 'remove' || d.edges.some((e) => e.id === c.id));
        return live.length ? { ...d, edges: applyEdgeChanges(live, d.edges) } : d;
      },
    });
  }, []);

  const showRefusal = useCallback((message: string | undefined) => {
    clearTimeout(refusalTimer.current);
    setRefusal(message);
    if (message) refusalTimer.current = setTimeout(() => setRefusal(undefined), 6000);
  }, []);

  /**
   * Core's connection rule, asked while a connection is dragged over a handle (a join's handle is the side it would
   * feed; a side output's, the output it would carry).
   */
  const isValidConnection: IsValidConnection<PartitionEdge> = useCallback(
    (c) => connectionRefusal(docRef.current, connectionOf(c)) === undefined,
    [],
  );

  const onConnect = useCallback((c: Connection) => {
    const ends = connectionOf(c);
    dispatch({
      type: 'commit',
      update: (d) => {
        if (connectionRefusal(d, ends)) return d;
        const edge = toFlowEdge(defaultEdge(toGraph(d), c.source, c.target, ends.side, ends.output));
        return { ...d, edges: addEdge(edge, d.edges) };
      },
    });
  }, []);

  /** When a drag ends on a handle that refused it, says why. */
  const onConnectEnd = useCallback(
    (_: MouseEvent | TouchEvent, state: FinalConnectionState) => {
      if (!state.fromNode || !state.toNode || state.isValid) return;
      showRefusal(connectionRefusal(docRef.current, connectionEnds(state)));
    },
    [showRefusal],
  );

  const addOperator = useCallback(
    (type: string, screen?: { x: number; y: number }) => {
      const pane = document.querySelector('.builder-canvas')?.getBoundingClientRect();
      const at = screen ?? (pane ? { x: pane.left + pane.width / 2, y: pane.top + pane.height / 2 } : { x: 0, y: 0 });
      // The new node is centred where it was dropped.
      const center = flow.screenToFlowPosition(at);
      const position = { x: center.x - NODE_SIZE.width / 2, y: center.y - NODE_SIZE.height / 2 };
      dispatch({
        type: 'commit',
        update: (d) => {
          const node = newOperatorNode(type, position, d);
          return { nodes: [...select(d.nodes, null), { ...node, selected: true }], edges: select(d.edges, null) };
        },
      });
    },
    [flow],
  );

  const updateVertex = useCallback((id: string, patch: Partial<VertexDraft>, coalesce?: string) => {
    dispatch({
      type: 'commit',
      coalesce: coalesce && `${id}:${coalesce}`,
      update: (d) => ({
        ...d,
        nodes: d.nodes.map((n) => (n.id === id ? { ...n, data: { ...n.data, vertex: { ...n.data.vertex, ...patch } } } : n)),
      }),
    });
  }, []);

  /** Text typed into an operator's parallelism or setting: kept as typed, its value applied when valid. */
  const typeField = useCallback((id: string, field: DraftField, text: string) => {
    dispatch({ type: 'commit', coalesce: `${id}:${field}`, update: (d) => typeInto(d, id, field, text) });
  }, []);

  /** A field left: valid typed text gives way to its value's own text (not an undo step of its own). */
  const leaveField = useCallback((id: string, field: DraftField) => {
    dispatch({ type: 'transient', update: (d) => settleDraft(d, id, field) });
  }, []);

  const updateEdge = useCallback((id: string, patch: { partitioning?: Partitioning; key?: string }, coalesce?: string) => {
    dispatch({
      type: 'commit',
      coalesce: coalesce && `${id}:${coalesce}`,
      update: (d) => ({
        ...d,
        edges: d.edges.map((e) => {
          if (e.id !== id || !e.data) return e;
          const data = { ...e.data, ...patch };
          if (data.partitioning !== 'hash') delete data.key;
          return { ...e, data, label: edgeLabel(data) };
        }),
      }),
    });
  }, []);

  const remove = useCallback((ids: { nodes?: string[]; edges?: string[] }) => {
    const nodes = new Set(ids.nodes);
    const edges = new Set(ids.edges);
    dispatch({
      type: 'commit',
      update: (d) => ({
        nodes: d.nodes.filter((n) => !nodes.has(n.id)),
        edges: d.edges.filter((e) => !edges.has(e.id) && !nodes.has(e.source) && !nodes.has(e.target)),
      }),
    });
  }, []);

  const selectElement = useCallback((id: string | null) => {
    dispatch({ type: 'transient', update: (d) => ({ nodes: select(d.nodes, id), edges: select(d.edges, id) }) });
  }, []);

  const autoLayout = useCallback(() => {
    dispatch({ type: 'commit', update: layoutDoc });
    requestAnimationFrame(() => void flow.fitView({ padding: 0.2, duration: 300 }));
  }, [flow]);

  const load = useCallback((next: BuilderDoc) => dispatch({ type: 'load', doc: next }), []);

  // Undo and redo from the keyboard, except while typing (a field has its own undo).
  useEffect(() => {
    const onKey = (e: KeyboardEvent) => {
      if (!(e.ctrlKey || e.metaKey) || typing(e.target)) return;
      const key = e.key.toLowerCase();
      if (key === 'z' && !e.shiftKey) dispatch({ type: 'undo' });
      else if ((key === 'z' && e.shiftKey) || key === 'y') dispatch({ type: 'redo' });
      else return;
      e.preventDefault();
    };
    window.addEventListener('keydown', onKey);
    return () => window.removeEventListener('keydown', onKey);
  }, []);

  const onDragOver = useCallback((e: React.DragEvent) => {
    e.preventDefault();
    e.dataTransfer.dropEffect = 'move';
  }, []);

  return {
    doc,
    issues,
    refusal,
    dismissRefusal: () => showRefusal(undefined),
    selectedNode: doc.nodes.find((n) => n.selected),
    selectedEdge: doc.edges.find((e) => e.selected),
    canUndo: canUndo(history),
    canRedo: canRedo(history),
    undo: () => dispatch({ type: 'undo' }),
    redo: () => dispatch({ type: 'redo' }),
    onNodesChange,
    onEdgesChange,
    onConnect,
    onConnectStart: () => showRefusal(undefined),
    onConnectEnd,
    isValidConnection,
    onDragOver,
    addOperator,
    updateVertex,
    typeField,
    leaveField,
    updateEdge,
    remove,
    selectElement,
    autoLayout,
    load,
  };
}

export type Builder = ReturnType<typeof useBuilder>;
