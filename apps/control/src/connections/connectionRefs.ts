import { CONNECTION_KINDS, operatorSpec, type ConnectionKind, type GraphIssue } from '@keyflow/core';
import { z } from 'zod';

/** A connector setting that names a connection, and the kind of connection it takes. */
export interface ConnectionField {
  name: string;
  kind: ConnectionKind;
}

/** One connection a pipeline names: which vertex (and its index in the graph), in which setting. */
export interface ConnectionRef {
  vertexId: string;
  type: string;
  index: number;
  field: string;
  kind: ConnectionKind;
  connection: string;
}

const fieldsByType = new Map<string, ConnectionField[]>();

/** The settings of an operator type that name a connection: their JSON schema says `format: 'connection'`, as the builder reads it. */
export function connectionFields(type: string): ConnectionField[] {
  let fields = fieldsByType.get(type);
  if (!fields) {
    const spec = operatorSpec(type);
    const json = spec ? (z.toJSONSchema(spec.settings, { io: 'input', unrepresentable: 'any' }) as { properties?: Record<string, unknown> }) : {};
    fields = Object.entries(json.properties ?? {}).flatMap(([name, s]) => {
      const { format, connectionKind } = s as { format?: unknown; connectionKind?: unknown };
      return format === 'connection' && CONNECTION_KINDS.includes(connectionKind as ConnectionKind)
        ? [{ name, kind: connectionKind as ConnectionKind }]
        : [];
    });
    fieldsByType.set(type, fields);
  }
  return fields;
}

/** Every connection a graph's vertices name (a graph as stored: anything that is no vertex is passed over). */
export function connectionRefs(graph: unknown): ConnectionRef[] {
  const vertices = (graph as { vertices?: unknown } | null)?.vertices;
  if (!Array.isArray(vertices)) return [];
  return vertices.flatMap((v: unknown, index) => {
    const { id, type, settings } = (v ?? {}) as { id?: unknown; type?: unknown; settings?: Record<string, unknown> };
    if (typeof id !== 'string' || typeof type !== 'string') return [];
    return connectionFields(type).flatMap((f) => {
      const connection = settings?.[f.name];
      return typeof connection === 'string' && connection ? [{ vertexId: id, type, index, field: f.name, kind: f.kind, connection }] : [];
    });
  });
}

/** What is wrong with the connections a graph names, given the kind of each connection there is (by name). */
export function connectionIssues(graph: unknown, kinds: ReadonlyMap<string, string>): GraphIssue[] {
  return connectionRefs(graph).flatMap((ref): GraphIssue[] => {
    const kind = kinds.get(ref.connection);
    const at = { path: ['vertices', ref.index, 'settings', ref.field], vertexId: ref.vertexId };
    if (kind === undefined)
      return [{ ...at, message: `${ref.vertexId}: there is no connection named '${ref.connection}' (an admin makes one under Connections)` }];
    if (kind !== ref.kind) {
      const spec = operatorSpec(ref.type);
      const what = spec ? `a ${spec.label} ${spec.kind}` : ref.type;
      return [{ ...at, message: `${ref.vertexId}: connection '${ref.connection}' is a ${kind} connection; ${what} needs a ${ref.kind} one` }];
    }
    return [];
  });
}
