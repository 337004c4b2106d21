/**
 * The logger the runtime writes to: pino's shape (an object of fields first, then the message), so the apps pass
 * their pino child loggers straight in. Failures are `warn` (handled, the job goes on) or `error` (it does not).
 */
export interface Logger {
  debug(fields: object, msg: string): void;
  info(fields: object, msg: string): void;
  warn(fields: object, msg: string): void;
  error(fields: object, msg: string): void;
  child(bindings: Record<string, unknown>): Logger;
}

/** Writes nothing: for tests and tools that do not log. */
export const silentLogger: Logger = {
  debug: () => {},
  info: () => {},
  warn: () => {},
  error: () => {},
  child: () => silentLogger,
};
