import pg from 'pg';

/**
 * The right to coordinate the jobs of one Keyflow (one key prefix): a session-level Postgres advisory lock held
 * on a connection of its own. Two control planes never coordinate at once: the one that holds the lock does,
 * the other stands by and takes over when the lock comes free (the holder stopped, or its connection died).
 *
 * The lock is the connection's: if that connection breaks while Postgres stays up, another control plane may
 * take the lock at once, so a holder that loses its connection must take the lock again before it goes on —
 * `check` says whether it still may.
 */
export class ControlLease {
  private client?: pg.Client;
  private broken = false;

  constructor(
    private readonly databaseUrl: string,
    private readonly name: string,
    private readonly log: (msg: string, extra?: object) => void,
  ) {}

  /**
   * Whether this control plane holds the lease now, taking it if it is free. `true` while the lock's connection
   * is fine or while Postgres is unreachable and it held the lock last (no one else can take it then either);
   * `false` once another control plane holds it.
   */
  async check(held: boolean): Promise<boolean> {
    try {
      if (this.client && !this.broken) {
        if (held) {
          await this.client.query('SELECT 1');
          return true;
        }
        return await this.tryLock(this.client);
      }
      await this.drop();
      const client = new pg.Client({ connectionString: this.databaseUrl, keepAlive: true, connectionTimeoutMillis: 2000, query_timeout: 5000 });
      client.on('error', (err) => {
        this.broken = true;
        this.log('control lease connection failed', { error: err.message });
      });
      await client.connect();
      this.client = client;
      this.broken = false;
      return await this.tryLock(client);
    } catch (err) {
      this.broken = true;
      // Postgres cannot be reached: neither can any other control plane's lock request.
      if (held) this.log('control lease unconfirmed; Postgres unreachable', { error: (err as Error).message });
      return held;
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
