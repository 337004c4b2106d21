/** What kind of refusal: the HTTP layer answers each with its status (401, 403, 404, 409, 415, 422, 503). */
export type RefusalKind = 'unauthorized' | 'forbidden' | 'not-found' | 'conflict' | 'unsupported-media-type' | 'invalid' | 'standing-by';

/** An action the control plane refuses, with a message for the user: what is wrong, in words. */
export class Refused extends Error {
  constructor(
    readonly kind: RefusalKind,
    message: string,
  ) {
    super(message);
  }
}
