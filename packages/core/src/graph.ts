import { z } from 'zod';
import { UPPER_BOUND_MAX_PARALLELISM } from './keyGroups.ts';

export const partitioningSchema = z.enum(['forward', 'hash', 'rebalance', 'broadcast']);
export type Partitioning = z.infer<typeof partitioningSchema>;

const id = z.string().regex(/^[A-Za-z][\w-]{0,63}$/, 'an id: a letter, then letters, digits, _ or -, at most 64');

export const vertexSchema = z
  .object({
    id,
    type: z.string().min(1).max(64),
    name: z.string().max(100).optional(),
    parallelism: z.number().int(),
    maxParallelism: z.number().int().min(1).max(UPPER_BOUND_MAX_PARALLELISM).optional(),
    settings: z.record(z.string(), z.unknown()).default({}),
    position: z.object({ x: z.number(), y: z.number() }).strict().optional(),
  })
  .strict();

export const edgeSchema = z
  .object({
    id: id.optional(),
    from: z.string().min(1),
    to: z.string().min(1),
    partitioning: partitioningSchema,
    /** The record field a `hash` edge keys by (keyBy). */
    key: z.string().min(1).max(64).optional(),
    /** Which input of a two-input operator (a join) the edge feeds. */
    side: z.enum(['left', 'right']).optional(),
    /** Which side output of the `from` operator the edge carries (none: its main output). */
    output: z
      .string()
      .regex(/^[A-Za-z][\w-]{0,63}$/, 'an output name')
      .optional(),
  })
  .strict();

export const graphSchema = z
  .object({
    vertices: z.array(vertexSchema).min(1, 'a pipeline needs at least one operator').max(200),
    edges: z.array(edgeSchema).max(1000),
  })
  .strict();

export type Vertex = z.infer<typeof vertexSchema>;
export type Edge = z.infer<typeof edgeSchema>;
export type Graph = z.infer<typeof graphSchema>;
/** A graph as users write it (settings may be left out). */
export type GraphInput = z.input<typeof graphSchema>;

/** The id an edge goes by: its own, or `from->to`. */
export function edgeId(e: Pick<Edge, 'id' | 'from' | 'to'>): string {
  return e.id ?? `${e.from}->${e.to}`;
}
