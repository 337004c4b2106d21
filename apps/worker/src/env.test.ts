import { describe, expect, it } from 'vitest';
import { workerEnv } from './env.ts';

const base = { DATABASE_URL: 'postgresql://127.0.0.1/db' };

describe('worker env', () => {
  it('logs at info unless told otherwise', () => {
    expect(workerEnv.parse(base).LOG_LEVEL).toBe('info');
    expect(workerEnv.parse({ ...base, LOG_LEVEL: 'warn' }).LOG_LEVEL).toBe('warn');
  });

  it('refuses a level pino does not have', () => {
    expect(workerEnv.safeParse({ ...base, LOG_LEVEL: 'verbose' }).success).toBe(false);
  });

  it('takes the sinks’ database URL when set, and an empty one as unset', () => {
    const sinks = 'postgresql://keyflow_sink:pw@127.0.0.1/db';
    expect(workerEnv.parse({ ...base, KEYFLOW_SINK_DATABASE_URL: sinks }).KEYFLOW_SINK_DATABASE_URL).toBe(sinks);
    expect(workerEnv.parse({ ...base, KEYFLOW_SINK_DATABASE_URL: '' }).KEYFLOW_SINK_DATABASE_URL).toBeUndefined();
    expect(workerEnv.safeParse({ ...base, KEYFLOW_SINK_DATABASE_URL: 'not a url' }).success).toBe(false);
  });

  it('takes KEYFLOW_SECRET_KEY when it is a usable key, an empty one as unset, and says why a short one is not', () => {
    const key = 'a'.repeat(64);
    expect(workerEnv.parse({ ...base, KEYFLOW_SECRET_KEY: key }).KEYFLOW_SECRET_KEY).toBe(key);
    expect(workerEnv.parse({ ...base, KEYFLOW_SECRET_KEY: '' }).KEYFLOW_SECRET_KEY).toBeUndefined();
    const short = workerEnv.safeParse({ ...base, KEYFLOW_SECRET_KEY: 'short' });
    expect(short.success).toBe(false);
    expect(short.error?.issues[0]?.message).toMatch(/^KEYFLOW_SECRET_KEY is too short/);
  });
});
