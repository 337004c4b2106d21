// Secrets at rest (connection passwords, tokens, secret headers): AES-256-GCM under KEYFLOW_SECRET_KEY.
//
// KEYFLOW_SECRET_KEY is either 32 random bytes, written as 64 hex digits or as base64 (e.g. `openssl rand -base64 32`),
// used as the key itself; or any other text of at least 16 characters, a passphrase, stretched into a key with scrypt
// (N 2^15, r 8, p 1, the fixed salt `keyflow/secret-key/v1`). The same text gives the same key on every machine, so the
// control plane and every worker must be given the same text.
//
// A sealed secret is: version (1 byte) | key id (4) | IV (12, random) | GCM tag (16) | ciphertext. The key id, the
// first bytes of an HMAC of the key, tells a secret sealed under another key from one changed since it was sealed.
// The caller's context (e.g. the connection's id) is authenticated with it: a sealed secret copied into another row
// does not open there.
import { createCipheriv, createDecipheriv, createHmac, randomBytes, scryptSync, timingSafeEqual } from 'node:crypto';

const VERSION = 1;
const KEY_ID_BYTES = 4;
const IV_BYTES = 12;
const TAG_BYTES = 16;
const HEADER_BYTES = 1 + KEY_ID_BYTES;

/** The shortest passphrase KEYFLOW_SECRET_KEY may be. */
export const SECRET_KEY_MIN_LENGTH = 16;

const HOW_TO_MAKE = 'e.g. the output of `openssl rand -base64 32`';

/** Why a secret could not be sealed or opened. */
export type SecretsErrorCode = 'no-key' | 'bad-key' | 'wrong-key' | 'tampered';

export class SecretsError extends Error {
  constructor(
    readonly code: SecretsErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'SecretsError';
  }
}

/** A key to seal and open secrets with, and its id (stored with each secret). */
export interface SecretKey {
  readonly bytes: Buffer;
  readonly id: Buffer;
}

const HEX_KEY = /^[0-9a-f]{64}$/i;
const BASE64_KEY = /^[A-Za-z0-9+/_-]{43}=?$/;

/** Why `text` is no usable KEYFLOW_SECRET_KEY; undefined when it is one. */
export function secretKeyProblem(text: string): string | undefined {
  if (text.length < SECRET_KEY_MIN_LENGTH)
    return `KEYFLOW_SECRET_KEY is too short: 32 random bytes as hex or base64 (${HOW_TO_MAKE}), or a passphrase of at least ${SECRET_KEY_MIN_LENGTH} characters`;
  if (text.trim() !== text) return 'KEYFLOW_SECRET_KEY starts or ends with white space: leave it out (a key file’s newline too)';
  return undefined;
}

const derived = new Map<string, SecretKey>();

/** The key KEYFLOW_SECRET_KEY stands for (see the top of this file); stretching a passphrase is done once per process. */
export function secretKey(text: string | undefined): SecretKey {
  if (!text) throw new SecretsError('no-key', 'KEYFLOW_SECRET_KEY is not set');
  const problem = secretKeyProblem(text);
  if (problem) throw new SecretsError('bad-key', problem);
  let key = derived.get(text);
  if (!key) {
    const bytes = keyBytes(text);
    key = { bytes, id: createHmac('sha256', bytes).update('keyflow/secret-key-id').digest().subarray(0, KEY_ID_BYTES) };
    derived.set(text, key);
  }
  return key;
}

function keyBytes(text: string): Buffer {
  if (HEX_KEY.test(text)) return Buffer.from(text, 'hex');
  if (BASE64_KEY.test(text)) {
    const bytes = Buffer.from(text, 'base64');
    if (bytes.length === 32) return bytes;
  }
  // A passphrase: scrypt makes guessing it from a stolen database slow. 2^15 × 8 × 128 bytes needs 32 MiB.
  return scryptSync(text, 'keyflow/secret-key/v1', 32, { N: 2 ** 15, r: 8, p: 1, maxmem: 64 * 1024 * 1024 });
}

/** `plaintext` sealed under `key`, bound to `context` (it must be given again to open it). */
export function sealSecret(key: SecretKey, plaintext: Buffer | string, context: string): Buffer {
  const header = Buffer.concat([Buffer.from([VERSION]), key.id]);
  const iv = randomBytes(IV_BYTES);
  const cipher = createCipheriv('aes-256-gcm', key.bytes, iv, { authTagLength: TAG_BYTES });
  cipher.setAAD(Buffer.concat([header, Buffer.from(context, 'utf8')]));
  const ciphertext = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  return Buffer.concat([header, iv, cipher.getAuthTag(), ciphertext]);
}

/** The plaintext of a secret `sealSecret` made with the same key and context; a SecretsError says why not. */
export function openSecret(key: SecretKey, sealed: Uint8Array, context: string): Buffer {
  const blob = Buffer.from(sealed);
  if (blob.length < HEADER_BYTES + IV_BYTES + TAG_BYTES)
    throw new SecretsError('tampered', 'the sealed secret is cut short: it was changed or corrupted');
  if (blob[0] !== VERSION) throw new SecretsError('tampered', `the sealed secret has version ${blob[0]}, which this Keyflow does not know`);
  const keyId = blob.subarray(1, HEADER_BYTES);
  if (!timingSafeEqual(keyId, key.id))
    throw new SecretsError(
      'wrong-key',
      `the secret was sealed with another KEYFLOW_SECRET_KEY (key id ${keyId.toString('hex')}; this one's is ${key.id.toString('hex')})`,
    );
  const iv = blob.subarray(HEADER_BYTES, HEADER_BYTES + IV_BYTES);
  const tag = blob.subarray(HEADER_BYTES + IV_BYTES, HEADER_BYTES + IV_BYTES + TAG_BYTES);
  const decipher = createDecipheriv('aes-256-gcm', key.bytes, iv, { authTagLength: TAG_BYTES });
  decipher.setAAD(Buffer.concat([blob.subarray(0, HEADER_BYTES), Buffer.from(context, 'utf8')]));
  decipher.setAuthTag(tag);
  try {
    return Buffer.concat([decipher.update(blob.subarray(HEADER_BYTES + IV_BYTES + TAG_BYTES)), decipher.final()]);
  } catch {
    throw new SecretsError('tampered', 'the sealed secret failed its integrity check: it was changed, corrupted or moved from another row');
  }
}

/** A JSON value sealed with `sealSecret`. */
export const sealJson = (key: SecretKey, value: unknown, context: string): Buffer => sealSecret(key, JSON.stringify(value), context);

/** A JSON value `sealJson` sealed. */
export const openJson = <T>(key: SecretKey, sealed: Uint8Array, context: string): T =>
  JSON.parse(openSecret(key, sealed, context).toString('utf8')) as T;
