import type { Connection } from '@keyflow/api';
import { describe, expect, it } from 'vitest';
import { bodyOf, draftOf, emptyDraft, parseHeaderLines, secretsText } from './connectionForm';

const stored: Connection = {
  id: '0b8f5a52-61f4-4b0e-9a3c-7d1e2f3a4b5c',
  name: 'hook',
  kind: 'http',
  url: 'https://hooks.example.com/in',
  username: null,
  tls: { rejectUnauthorized: false },
  headers: { 'X-Team': 'data' },
  secretHeaders: ['Authorization'],
  hasPassword: false,
  hasToken: true,
  createdBy: 'admin@keyflow.test',
  createdAt: '2026-12-01T09:00:00.000Z',
  updatedAt: '2026-12-01T09:00:00.000Z',
  usedBy: [],
};

describe('the connection form', () => {
  it('makes a new connection’s body: empty secrets are left out, TLS only when asked for', () => {
    const draft = { ...emptyDraft('nats'), name: ' orders-nats ', url: 'nats://10.0.0.5:4222', username: 'app', password: 'pw' };
    expect(bodyOf(draft)).toEqual({
      ok: true,
      body: { name: 'orders-nats', kind: 'nats', url: 'nats://10.0.0.5:4222', username: 'app', password: 'pw', tls: null },
    });
    expect(bodyOf({ ...draft, password: '', useTls: true, verifyCertificate: false, servername: 'nats.internal' })).toMatchObject({
      ok: true,
      body: { tls: { rejectUnauthorized: false, servername: 'nats.internal' } },
    });
  });

  it('says what is wrong per field, in the API’s words', () => {
    const result = bodyOf({ ...emptyDraft('redis'), name: 'bad name', url: 'redis://me:pw@cache:6379' });
    expect(result).toEqual({
      ok: false,
      problems: {
        name: 'a connection name: letters, digits, _, . and -',
        url: 'put the user name and password in their own fields, not in the URL',
      },
    });
    expect(bodyOf({ ...emptyDraft('http'), name: 'h', url: 'https://x', headers: 'no colon here' })).toMatchObject({
      ok: false,
      problems: { headers: 'line 1: one header a line, as Name: value' },
    });
  });

  it('edits a stored one: secrets left empty stay, removed ones go as null; a kind without tokens clears the token', () => {
    const draft = draftOf(stored);
    expect(draft).toMatchObject({ name: 'hook', useTls: true, verifyCertificate: false, headers: 'X-Team: data', password: '', token: '' });
    expect(bodyOf(draft, stored)).toEqual({
      ok: true,
      body: {
        name: 'hook',
        kind: 'http',
        url: 'https://hooks.example.com/in',
        username: null,
        tls: { rejectUnauthorized: false },
        headers: { 'X-Team': 'data' },
      },
    });
    expect(bodyOf({ ...draft, removeToken: true, removeSecretHeaders: ['Authorization'] }, stored)).toMatchObject({
      ok: true,
      body: { token: null, secretHeaders: { Authorization: null } },
    });
    expect(bodyOf({ ...draft, secretHeaderValue: 'Bearer new' }, stored)).toMatchObject({ body: { secretHeaders: { Authorization: 'Bearer new' } } });
    const asRedis = bodyOf({ ...draft, kind: 'redis', url: 'redis://cache:6379' }, stored);
    expect(asRedis).toMatchObject({ ok: true, body: { kind: 'redis', token: null, secretHeaders: { Authorization: null } } });
    expect(asRedis.ok && 'headers' in asRedis.body).toBe(false);
  });

  it('reads header lines and tells what is secret', () => {
    expect(parseHeaderLines('X-A: 1\n\n  X-B :two: parts ')).toEqual({ ok: true, headers: { 'X-A': '1', 'X-B': 'two: parts' } });
    expect(secretsText(stored)).toBe('token, header Authorization');
    expect(secretsText({ hasPassword: false, hasToken: false, secretHeaders: [] })).toBe('none');
  });
});
