import type { Output } from './types.ts';

/**
 * `out`, noting whatever its downstream throws (`noted` gets it, then it goes on up): an operator's guard tells that
 * failure from the operator's own, which it dead-letters. The emits stay a direct call each (the record path).
 */
export function notingDownstream(out: Output, noted: (err: unknown) => void): Output {
  const emitTo = out.emitTo;
  return {
    emit: (r) => {
      try {
        out.emit(r);
      } catch (err) {
        noted(err);
        throw err;
      }
    },
    ...(emitTo && {
      emitTo: (name: string, r: Parameters<Output['emit']>[0]) => {
        try {
          emitTo.call(out, name, r);
        } catch (err) {
          noted(err);
          throw err;
        }
      },
    }),
  };
}
