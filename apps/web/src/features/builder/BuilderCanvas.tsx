'use client';
import type { OperatorKind } from '@keyflow/core';
import { Background, Controls, MiniMap, Panel, ReactFlow, useConnection } from '@xyflow/react';
import { useMemo, useState } from 'react';
import { connectionEnds, connectionRefusal, kindOf, type BuilderDoc, type OperatorNode } from './builderGraph';
import { edgeTypes } from './edges';
import { nodeTypes } from './nodes';
import { OPERATOR_MIME } from './Palette';
import type { Builder } from './useBuilder';

const refuseAll = () => false;

const KIND_COLOR: Record<OperatorKind, string> = { source: '#3b82c4', transform: '#7a5cc7', keyed: '#d9822b', sink: '#2f9e63' };

/** While a connection is dragged over a handle that refuses it, says why (core's connectionProblem). */
function ConnectionHint({ doc }: { doc: BuilderDoc }) {
  const c = useConnection();
  if (!c.inProgress || c.isValid !== false || !c.toNode) return null;
  const reason = connectionRefusal(doc, connectionEnds(c));
  return reason ? (
    <Panel position="top-center" className="hint hint-refused" data-testid="connection-hint">
      ✕ {reason}
    </Panel>
  ) : null;
}

/**
 * The editable pipeline canvas: drop operators from the palette, connect handles, select, delete with the keyboard.
 * Read-only, it is for looking: pan, zoom and select, nothing moves or changes.
 */
export function BuilderCanvas({ builder, readOnly = false }: { builder: Builder; readOnly?: boolean }) {
  const { doc, issues } = builder;
  // Fit a loaded pipeline once; an empty canvas keeps its viewport, so drops land where they are dropped.
  const [fitOnInit] = useState(doc.nodes.length > 0);

  // Marks what validateGraph finds on the nodes and edges themselves.
  const nodes = useMemo(
    () =>
      doc.nodes.map((n) => {
        const found = issues.vertices.get(n.id)?.map((i) => i.message);
        return found?.length || n.data.issues ? { ...n, data: { ...n.data, issues: found } } : n;
      }),
    [doc.nodes, issues],
  );
  const edges = useMemo(
    () =>
      doc.edges.map((e) => {
        const found = issues.edges.get(e.id);
        return found ? { ...e, className: 'edge-invalid', data: { ...e.data!, issues: found.map((i) => i.message) } } : e;
      }),
    [doc.edges, issues],
  );

  return (
    <div
      className="builder-canvas"
      data-testid="builder-canvas"
      onDragOver={readOnly ? undefined : builder.onDragOver}
      onDrop={(e) => {
        const type = e.dataTransfer.getData(OPERATOR_MIME);
        if (!type || readOnly) return;
        e.preventDefault();
        builder.addOperator(type, { x: e.clientX, y: e.clientY });
      }}
    >
      <ReactFlow
        nodes={nodes}
        edges={edges}
        nodeTypes={nodeTypes}
        edgeTypes={edgeTypes}
        onNodesChange={builder.onNodesChange}
        onEdgesChange={builder.onEdgesChange}
        onConnect={readOnly ? undefined : builder.onConnect}
        onConnectStart={readOnly ? undefined : builder.onConnectStart}
        onConnectEnd={readOnly ? undefined : builder.onConnectEnd}
        isValidConnection={readOnly ? refuseAll : builder.isValidConnection}
        nodesDraggable={!readOnly}
        nodesConnectable={!readOnly}
        deleteKeyCode={readOnly ? null : ['Backspace', 'Delete']}
        fitView={fitOnInit}
        fitViewOptions={{ padding: 0.25, maxZoom: 1.2 }}
        minZoom={0.2}
        proOptions={{ hideAttribution: true }}
      >
        <Background gap={20} />
        <Controls showInteractive={false} />
        <MiniMap<OperatorNode> pannable zoomable nodeColor={(n) => KIND_COLOR[kindOf(n.data.vertex.type)]} />
        <ConnectionHint doc={doc} />
        {builder.refusal && (
          <Panel position="top-center" className="hint hint-refused" role="alert" data-testid="connection-refused">
            Connection refused: {builder.refusal}
            <button type="button" className="link" onClick={builder.dismissRefusal} aria-label="Dismiss">
              ✕
            </button>
          </Panel>
        )}
        {doc.nodes.length === 0 && !readOnly && (
          <Panel position="top-center" className="hint">
            Drag operators here from the palette, then connect an output (right) to an input (left).
          </Panel>
        )}
      </ReactFlow>
    </div>
  );
}
