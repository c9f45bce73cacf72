import pg from 'pg';
import type { Logger } from 'pino';

const RECONNECT_MS = 1000;

export interface ListenerHandlers {
  /** A notification on the channel (PostgreSQL sends it at the notifying transaction's COMMIT). */
  notification(payload: string | undefined): void;
  /** LISTEN took effect: notifications from now on arrive. */
  up?(): void;
  /** The connection was lost: notifications are missed until `up` again (reconnected every second). */
  down?(): void;
}

/**
 * A dedicated connection LISTENing on one PostgreSQL channel, reconnected every second
 * when it drops, for what every server process must hear of at once (Consent changes,
 * websocket Subscription pings).
 */
export class PgListener {
  private client: pg.Client | undefined;
  private stopped = false;
  private retry: NodeJS.Timeout | undefined;

  constructor(
    private readonly connection: string | pg.ClientConfig,
    private readonly channel: string,
    private readonly handlers: ListenerHandlers,
    /** Said (with the error) when the connection is lost. */
    private readonly lostMessage: string,
    private readonly log?: Pick<Logger, 'warn'>
  ) {}

  async start(): Promise<void> {
    this.stopped = false;
    const client = new pg.Client(this.connection);
    client.on('notification', (message) => {
      if (message.channel === this.channel) this.handlers.notification(message.payload);
    });
    const lost = (err?: Error): void => {
      if (this.client !== client) return;
      this.client = undefined;
      this.handlers.down?.();
      client.end().catch(() => undefined);
      if (this.stopped) return;
      if (err) this.log?.warn({ err }, this.lostMessage);
      this.retry = setTimeout(() => void this.start().catch(() => undefined), RECONNECT_MS);
    };
    client.on('error', lost);
    client.on('end', () => lost());
    this.client = client;
    try {
      await client.connect();
      await client.query(`LISTEN ${this.channel}`);
      this.handlers.up?.();
    } catch (err) {
      lost(err as Error);
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.retry) clearTimeout(this.retry);
    const client = this.client;
    this.client = undefined;
    this.handlers.down?.();
    await client?.end().catch(() => undefined);
  }
}
