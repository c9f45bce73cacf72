import type { Knex } from 'knex';
import type pg from 'pg';
import { PgListener } from '../storage/pg-listener';
import type { Logger } from 'pino';

const CHANNEL = 'fhir_consent_changed';

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
  private listening = false;
  private readonly listener: PgListener;

  constructor(connection: string | pg.ClientConfig, log?: Pick<Logger, 'warn'>) {
    this.listener = new PgListener(
      connection,
      CHANNEL,
      {
        notification: () => this.epochValue++,
        // Whatever changed before LISTEN took effect is covered by the new epoch.
        up: () => {
          this.epochValue++;
          this.listening = true;
        },
        down: () => {
          this.listening = false;
          this.epochValue++;
        },
      },
      'Consent change notifications lost; Consents are read per request until they are back',
      log
    );
  }

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

  start(): Promise<void> {
    return this.listener.start();
  }

  stop(): Promise<void> {
    return this.listener.stop();
  }
}
