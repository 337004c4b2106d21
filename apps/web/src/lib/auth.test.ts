import { ApiRequestError } from '@keyflow/api';
import { describe, expect, it } from 'vitest';
import { safeNext, signInErrorText, signInHref } from './auth';

describe('where signing in leads back to', () => {
  it.each([
    ['/jobs/42?tab=checkpoints', '/jobs/42?tab=checkpoints'],
    ['/', '/'],
    [null, '/'],
    ['', '/'],
    ['https://evil.example/', '/'],
    ['//evil.example/path', '/'],
    ['/\\evil.example', '/'],
    ['javascript:alert(1)', '/'],
    ['/sign-in', '/'],
    ['/sign-in?next=/jobs', '/'],
  ])('%j → %j', (next, path) => {
    expect(safeNext(next)).toBe(path);
  });

  it('sends a page to sign in with its own path to come back to', () => {
    expect(signInHref('/jobs/42?x=1')).toBe('/sign-in?next=%2Fjobs%2F42%3Fx%3D1');
    expect(signInHref('/')).toBe('/sign-in');
    expect(signInHref('/sign-in?next=/a')).toBe('/sign-in');
  });
});

describe('what a failed sign-in says', () => {
  const refused = (status: number, message: string, retryAfter?: number) => new ApiRequestError(status, { error: 'x', message }, retryAfter);

  it('wrong credentials, whatever the words of the auth library', () => {
    expect(signInErrorText(refused(401, 'Invalid email or password'))).toBe('Wrong email or password.');
  });

  it('too many attempts, with the wait the answer gives (its header, else its message)', () => {
    expect(signInErrorText(refused(429, 'Too many requests. Please try again later.', 37))).toBe('Too many attempts: try again in 37 s.');
    expect(signInErrorText(refused(429, 'too many attempts, try again in 12 s'))).toBe('Too many attempts: try again in 12 s.');
    expect(signInErrorText(refused(429, 'Too many requests. Please try again later.'))).toBe('Too many attempts: try again later.');
  });

  it("anything else in the server's own words", () => {
    expect(signInErrorText(refused(403, 'origin not allowed'))).toBe('origin not allowed');
    expect(signInErrorText(new TypeError('fetch failed'))).toBe('The dashboard server cannot be reached.');
  });
});
