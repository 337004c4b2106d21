import { z } from 'zod';

/** The dashboard server's configuration, read at run time (not baked in by `next build`). */
export const webEnv = z
  .object({
    /** The control plane that `/api` and `/socket.io` are proxied to; the browser never sees it. */
    CONTROL_URL: z.url().default('http://127.0.0.1:4000'),
  })
  .parse(process.env);
