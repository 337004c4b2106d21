import type { Logger } from '@keyflow/runtime';
import pg from 'pg';

/**
 * The right to coordinate the jobs of one Keyflow (one key prefix): a session-level Postgres advisory lock held
 * on a connection of its own. Two control planes never coordinate at once: the one that holds the lock does,
 * the other stands by and takes over when the lock comes free (the holder stopped, or its connection died).
 *
 * The lock is the connection's: when that connection breaks, Postgres may free the lock at once (the server saw the
 * session end) and another control plane may take it, even while this one cannot reach Postgres. So a holder whose
 * connection breaks, or that cannot confirm it, has lost the lease: `onLost` is told the moment the connection
 * fails, and `check` answers false until this control plane has taken the lock again.
 */
export class ControlLease {
  private client?: pg.Client;
  private broken = false;

  constructor(
    private readonly databaseUrl: string,
    private readonly name: string,
    private readonly logger: Logger,
    private readonly onLost: () => void,
  ) {}

  /** Whether this control plane holds the lease now, taking it if it is free; false while Postgres cannot be reached. */
  async check(held: boolean): Promise<boolean> {
    try {
      if (this.client && !this.broken) {
        if (!held) return await this.tryLock(this.client);
        await this.client.query('SELECT 1');
        return true;
      }
      await this.drop();
      const client = new pg.Client({ connectionString: this.databaseUrl, keepAlive: true, connectionTimeoutMillis: 2000, query_timeout: 5000 });
      const lost = (why: string) => {
        if (this.broken || this.client !== client) return;
        this.broken = true;
        this.logger.warn({ error: why }, 'the lease connection failed');
        this.onLost();
      };
      client.on('error', (err) => lost(err.message));
      client.on('end', () => lost('connection ended'));
      await client.connect();
      this.client = client;
      this.broken = false;
      return await this.tryLock(client);
    } catch (err) {
      this.broken = true;
      if (held) {
        this.logger.warn({ error: (err as Error).message }, 'cannot confirm the lease (Postgres unreachable): it counts as lost');
        this.onLost();
      }
      return false;
    }
  }

  private async tryLock(client: pg.Client): Promise<boolean> {
    const { rows } = await client.query<{ ok: boolean }>("SELECT pg_try_advisory_lock(hashtext('keyflow_control'), hashtext($1)) AS ok", [this.name]);
    return rows[0]?.ok === true;
  }

  private async drop(): Promise<void> {
    const c = this.client;
    this.client = undefined;
    await c?.end().catch(() => {});
  }

  /** Gives the lease up (closing the connection releases the lock). */
  release(): Promise<void> {
    return this.drop();
  }
}
