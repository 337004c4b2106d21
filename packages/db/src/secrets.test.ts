import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { ConnectionError, connectionProfile, sealConnectionSecrets } from './connections.ts';
import { openJson, openSecret, sealJson, sealSecret, secretKey, secretKeyProblem, SecretsError } from './secrets.ts';

const HEX = randomBytes(32).toString('hex');
const BASE64 = randomBytes(32).toString('base64');
const PASSPHRASE = 'correct horse battery staple';

/** What `fn` threw, as a SecretsError's (or ConnectionError's) code and message. */
function failure(fn: () => unknown): { code: string; message: string } {
  try {
    fn();
  } catch (err) {
    if (err instanceof SecretsError || err instanceof ConnectionError) return { code: err.code, message: err.message };
    throw err;
  }
  throw new Error('it did not throw');
}

describe('KEYFLOW_SECRET_KEY', () => {
  it.each([
    ['64 hex digits', HEX, Buffer.from(HEX, 'hex')],
    ['base64 of 32 bytes', BASE64, Buffer.from(BASE64, 'base64')],
    ['base64url of 32 bytes, unpadded', Buffer.from(BASE64, 'base64').toString('base64url'), Buffer.from(BASE64, 'base64')],
  ])('%s are the key itself', (_what, text, bytes) => {
    expect(secretKey(text).bytes.equals(bytes)).toBe(true);
  });

  it('a passphrase is stretched with scrypt, the same on every machine (pinned: a change would lose every stored secret)', () => {
    const a = secretKey(PASSPHRASE);
    expect(a.bytes.toString('hex')).toBe('e7348184ddfeea1e64c1faea1f852fe4f26eca1c1ca38a43496b5d99d69f63eb');
    expect(a.id.toString('hex')).toBe('b3a9ecfa');
    expect(secretKey(`${PASSPHRASE}!`).id.equals(a.id)).toBe(false);
  });

  it('refuses what is missing, too short, or padded with white space, saying so', () => {
    expect(failure(() => secretKey(undefined))).toEqual({ code: 'no-key', message: 'KEYFLOW_SECRET_KEY is not set' });
    expect(failure(() => secretKey(''))).toMatchObject({ code: 'no-key' });
    expect(failure(() => secretKey('short'))).toMatchObject({ code: 'bad-key', message: expect.stringContaining('too short') });
    expect(secretKeyProblem(`${HEX}\n`)).toMatch(/white space/);
    expect(secretKeyProblem(PASSPHRASE)).toBeUndefined();
  });
});

describe('sealed secrets', () => {
  const key = secretKey(HEX);

  it('open to what was sealed, with the same key and context', () => {
    const sealed = sealSecret(key, 'hunter2', 'row-1');
    expect(openSecret(key, sealed, 'row-1').toString()).toBe('hunter2');
    expect(openJson(key, sealJson(key, { password: 'p', token: 't' }, 'row-1'), 'row-1')).toEqual({ password: 'p', token: 't' });
    // A version byte, the key id, a random IV and the tag come first; the plaintext is nowhere in it.
    expect(sealed[0]).toBe(1);
    expect(sealed.subarray(1, 5).equals(key.id)).toBe(true);
    expect(sealed.includes(Buffer.from('hunter2'))).toBe(false);
    expect(sealSecret(key, 'hunter2', 'row-1').equals(sealed)).toBe(false);
  });

  it('sealed with another key say so, naming both key ids', () => {
    const other = secretKey(PASSPHRASE);
    const f = failure(() => openSecret(other, sealSecret(key, 'hunter2', 'row-1'), 'row-1'));
    expect(f.code).toBe('wrong-key');
    expect(f.message).toContain('sealed with another KEYFLOW_SECRET_KEY');
    expect(f.message).toContain(key.id.toString('hex'));
  });

  it('changed by one bit anywhere, cut short, or opened in another row: the integrity check fails', () => {
    const sealed = sealSecret(key, 'a longer secret value', 'row-1');
    // The IV, the tag and the ciphertext.
    for (const at of [8, 20, sealed.length - 1]) {
      const changed = Buffer.from(sealed);
      changed[at]! ^= 0x01;
      expect(
        failure(() => openSecret(key, changed, 'row-1')),
        `bit flipped at ${at}`,
      ).toMatchObject({ code: 'tampered' });
    }
    expect(failure(() => openSecret(key, sealed.subarray(0, 20), 'row-1'))).toMatchObject({
      code: 'tampered',
      message: expect.stringContaining('cut short'),
    });
    expect(failure(() => openSecret(key, sealed, 'row-2'))).toMatchObject({ code: 'tampered', message: expect.stringContaining('integrity') });
    const version = Buffer.from(sealed);
    version[0] = 9;
    expect(failure(() => openSecret(key, version, 'row-1')).message).toContain('version 9');
  });
});

describe('a connection profile', () => {
  const row = (secret: Uint8Array | null) => ({
    id: '5e0c0a4e-8b7a-4d3e-9d5c-4c1f3e2b1a00',
    name: 'orders-nats',
    kind: 'http',
    config: {
      url: 'https://hooks.example.com/in',
      username: 'svc',
      headers: { 'X-Team': 'data' },
      hasPassword: true,
      secretHeaders: ['Authorization'],
    },
    secret,
  });
  const secrets = { password: 'pw', headers: { Authorization: 'Bearer abc' } };

  it('opens its secrets with the key and merges plain and secret headers', () => {
    const sealed = sealConnectionSecrets(secretKey(HEX), row(null).id, secrets);
    expect(connectionProfile(row(sealed), HEX)).toEqual({
      name: 'orders-nats',
      kind: 'http',
      url: 'https://hooks.example.com/in',
      username: 'svc',
      password: 'pw',
      headers: { 'X-Team': 'data', Authorization: 'Bearer abc' },
    });
    expect(sealConnectionSecrets(secretKey(HEX), row(null).id, {})).toBeNull();
    // Nothing secret: no key needed.
    expect(connectionProfile(row(null), undefined)).toMatchObject({ username: 'svc', headers: { 'X-Team': 'data' } });
  });

  it('names the connection when the key is missing or another', () => {
    const sealed = sealConnectionSecrets(secretKey(HEX), row(null).id, secrets);
    expect(failure(() => connectionProfile(row(sealed), undefined))).toEqual({
      code: 'no-key',
      message:
        "connection 'orders-nats': its secrets cannot be opened: KEYFLOW_SECRET_KEY is not set: give this process the control plane’s KEYFLOW_SECRET_KEY",
    });
    expect(failure(() => connectionProfile(row(sealed), PASSPHRASE))).toMatchObject({
      code: 'wrong-key',
      message: expect.stringMatching(/^connection 'orders-nats': .*another KEYFLOW_SECRET_KEY/),
    });
  });
});
