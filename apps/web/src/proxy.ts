import { NextResponse, type NextRequest } from 'next/server';
import { webEnv } from './env';

const control = webEnv.CONTROL_URL.replace(/\/$/, '');

/**
 * Sends `/api/*` and `/socket.io/*` to the control plane so the browser sees one origin. A proxy (rather than
 * `rewrites()` in next.config) reads CONTROL_URL when the server starts instead of when it is built, keeps
 * Socket.IO's trailing slash, and carries WebSocket upgrades as well as plain requests.
 */
export function proxy(request: NextRequest) {
  const { pathname, search } = request.nextUrl;
  // Next drops a trailing slash before we see the path; Socket.IO's server only answers at `/socket.io/`.
  const path = pathname === '/socket.io' ? '/socket.io/' : pathname;
  return NextResponse.rewrite(new URL(path + search, control));
}

export const config = { matcher: ['/api/:path*', '/socket.io', '/socket.io/:path*'] };
