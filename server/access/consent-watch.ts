import type { Knex } from 'knex';
import pg from 'pg';
import type { Logger } from 'pino';

const CHANNEL = 'fhir_consent_changed';
const RECONNECT_MS = 1000;

/**
 * Tells whether the Consents may have changed since a moment, so that the Consent rules
 * of a principal are searched once and reused until then (access/principal-access.ts),
 * instead of a Consent search on every request.
 *
 * A dedicated connection LISTENs on the channel the Consent table's trigger notifies
 * (storage/migrations/007-consent-notify.ts). Each notification, and each loss of that
 * connection, starts a new epoch; while it is not listening, nothing may be reused
 * (`live` false), so a missed notification can never leave stale rules in use.
 * PostgreSQL sends the notification at COMMIT, but it reaches this process
 * asynchronously: a request that follows a Consent write through this process must not
 * race it, so the FHIR router also calls `changed()` once such a write has committed,
 * before it answers. A write through another process (WORKERS, replicas) counts once its
 * notification arrives here, typically within a millisecond.
 */
export class ConsentWatch {
  private epochValue = 0;
  private client: pg.Client | undefined;
  private listening = false;
  private stopped = false;
  private retry: NodeJS.Timeout | undefined;

  constructor(
    private readonly connection: string | pg.ClientConfig,
    private readonly log?: Pick<Logger, 'warn'>
  ) {}

  static forKnex(knex: Knex, log?: Pick<Logger, 'warn'>): ConsentWatch {
    return new ConsentWatch((knex.client as { config: { connection: string | pg.ClientConfig } }).config.connection, log);
  }

  /** The current epoch; rules computed in it stay valid while `live` and the epoch is unchanged. */
  get epoch(): number {
    return this.epochValue;
  }

  get live(): boolean {
    return this.listening;
  }

  /** A Consent may have changed (a write through this process committed): rules computed before are not reused. */
  changed(): void {
    this.epochValue++;
  }

  async start(): Promise<void> {
    this.stopped = false;
    const client = new pg.Client(this.connection);
    client.on('notification', () => {
      this.epochValue++;
    });
    const lost = (err?: Error): void => {
      if (this.client !== client) return;
      this.listening = false;
      this.epochValue++;
      this.client = undefined;
      client.end().catch(() => undefined);
      if (!this.stopped) {
        if (err) this.log?.warn({ err }, 'Consent change notifications lost; Consents are read per request until they are back');
        this.retry = setTimeout(() => void this.start().catch(() => undefined), RECONNECT_MS);
      }
    };
    client.on('error', lost);
    client.on('end', () => lost());
    this.client = client;
    try {
      await client.connect();
      await client.query(`LISTEN ${CHANNEL}`);
      // Whatever changed before LISTEN took effect is covered by the new epoch.
      this.epochValue++;
      this.listening = true;
    } catch (err) {
      lost(err as Error);
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.retry) clearTimeout(this.retry);
    this.listening = false;
    const client = this.client;
    this.client = undefined;
    await client?.end().catch(() => undefined);
  }
}
