'use client';
import { ApiRequestError, mayAct, type Me, type Role } from '@keyflow/api';
import { useQuery } from '@tanstack/react-query';
import { api, queryKeys } from './api';

export const SIGN_IN_PATH = '/sign-in';

/** What each role may do, in a line. */
export const ROLE_HELP: Record<Role, string> = {
  viewer: 'viewer: reads everything, changes nothing',
  operator: 'operator: also deploys, rescales, checkpoints, stops and cancels jobs, edits pipelines and tests connections',
  admin: 'admin: also manages users, roles, API keys and connections, and reads the audit trail',
};

/** Whether a request failed because nobody is signed in (or the session ended). */
export const isUnauthorized = (error: unknown) => error instanceof ApiRequestError && error.status === 401;

/** Whether a request was refused for who is asking (401, 403): asking again changes nothing. */
const isRefused = (error: unknown) => error instanceof ApiRequestError && (error.status === 401 || error.status === 403);

/** The queries' retry rule: once, unless the request was refused for who is asking. */
export const retryUnlessRefused = (failures: number, error: unknown) => !isRefused(error) && failures < 1;

/**
 * Where to go after signing in: a path of this dashboard only (never another site: `//evil.example` and `/\evil`
 * are other origins to a browser), and never the sign-in page itself.
 */
export function safeNext(next: string | null | undefined): string {
  if (!next || !next.startsWith('/') || next.startsWith('//') || next.startsWith('/\\')) return '/';
  if (next === SIGN_IN_PATH || next.startsWith(`${SIGN_IN_PATH}?`) || next.startsWith(`${SIGN_IN_PATH}/`)) return '/';
  return next;
}

/** The sign-in page, told to come back to `here` (a path with its query) afterwards. */
export function signInHref(here: string): string {
  const next = safeNext(here);
  return next === '/' ? SIGN_IN_PATH : `${SIGN_IN_PATH}?next=${encodeURIComponent(next)}`;
}

/** What a failed sign-in says to the person: wrong credentials, too many attempts (and for how long), or the server's word. */
export function signInErrorText(error: unknown): string {
  if (error instanceof ApiRequestError) {
    if (error.status === 401) return 'Wrong email or password.';
    if (error.status === 429) {
      const seconds = error.retryAfterSeconds ?? Number(/(\d+)\s*s/.exec(error.body.message)?.[1] ?? NaN);
      return Number.isFinite(seconds) && seconds > 0
        ? `Too many attempts: try again in ${Math.ceil(seconds)} s.`
        : 'Too many attempts: try again later.';
    }
    return error.body.message || `${error.status} ${error.body.error}`;
  }
  if (error instanceof TypeError) return 'The dashboard server cannot be reached.';
  return error instanceof Error ? error.message : String(error);
}

/**
 * Who is signed in, and with which role: `null` when nobody is (a 401, an answer like any other, so asking again
 * never blanks the page). Any other failure (the control plane is down) is retried once, and not again each time a
 * component that asks mounts: the page shows what it can meanwhile, its actions hidden since the role is unknown.
 */
export const useMe = () =>
  useQuery({
    queryKey: queryKeys.me,
    queryFn: async (): Promise<Me | null> => {
      try {
        return await api.me();
      } catch (error) {
        if (isUnauthorized(error)) return null;
        throw error;
      }
    },
    staleTime: 60_000,
    retry: retryUnlessRefused,
    retryOnMount: false,
  });

/** The signed-in role; undefined while it is not known. */
export const useRole = (): Role | undefined => useMe().data?.role;

/** Whether the signed-in person may do what `needed` may; false while the role is not known. */
export function useMayAct(needed: Role): boolean {
  const role = useRole();
  return role !== undefined && mayAct(role, needed);
}
