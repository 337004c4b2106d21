import type { z } from 'zod';

/**
 * What is wrong with `value` by `schema` (one of the API's own zod schemas, so the form refuses what the server
 * would): the schema's first message, or `message` when the schema's words are not a person's; undefined when it is right.
 */
export function problemOf(schema: z.ZodType, value: unknown, message?: string): string | undefined {
  const result = schema.safeParse(value);
  if (result.success) return undefined;
  return message ?? result.error.issues[0]?.message ?? 'not a valid value';
}
