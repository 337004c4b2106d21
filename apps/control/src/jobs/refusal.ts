/** What kind of refusal: the HTTP layer answers each with its status (404, 409, 422, 503). */
export type RefusalKind = 'not-found' | 'conflict' | 'invalid' | 'standing-by';

/** An action the control plane refuses, with a message for the user: what is wrong, in words. */
export class Refused extends Error {
  constructor(
    readonly kind: RefusalKind,
    message: string,
  ) {
    super(message);
  }
}
