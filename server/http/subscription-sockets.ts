import type http from 'node:http';
import type { Duplex } from 'node:stream';
import type { Subscription } from '@medplum/fhirtypes';
import type { Knex } from 'knex';
import type pg from 'pg';
import type { Logger } from 'pino';
import { WebSocketServer, type WebSocket } from 'ws';
import { GuardedStore } from '../access/guarded-store';
import type { Principal } from '../access/principal';
import { type AccessOptions, accessFor } from '../access/principal-access';
import type { BearerVerifier } from '../auth/auth-exchange';
import { SUBSCRIPTION_PING_CHANNEL } from '../jobs/subscription-delivery';
import { PgListener } from '../storage/pg-listener';
import type { ResourceStore } from '../storage/resource-store';
import { bearerToken } from './bearer-auth';

/** Where clients open their socket, under the FHIR base (advertised in the CapabilityStatement). */
export const SUBSCRIPTION_SOCKET_PATH = '/fhir/websocket';
/** A socket that says nothing and answers no ping for this long is closed (ws protocol pings keep proxies from dropping idle sockets). */
const HEARTBEAT_MS = 30_000;

export interface SubscriptionSocketOptions {
  repo: ResourceStore;
  /** Verifies a bearer token; undefined when this process has no authorization server. */
  verify?: BearerVerifier;
  /** AUTH_REQUIRED: a socket without a valid token is refused (401) at the upgrade. */
  authRequired: boolean;
  accessOptions?: AccessOptions;
  logger: Pick<Logger, 'warn'>;
}

/**
 * The R4 websocket channel of Subscriptions (subscription.html#2.46.7.2): a client opens a
 * websocket on `/fhir/websocket` (with its access token as `?access_token=` or an
 * Authorization header, browsers being unable to set one), sends `bind <id>` for a
 * Subscription of channel type websocket that its token may read, and is answered
 * `bound <id>`; each time a resource matching that Subscription's criteria changes, the
 * server sends `ping <id>`, and the client searches for what changed. A bind the client may
 * not make is answered `error <id> <reason>`.
 *
 * Pings reach every process: the delivery step (jobs/subscription-delivery.ts) NOTIFYs
 * the Subscription's id when it commits, and each process LISTENs on a connection of its
 * own and pings the sockets bound to it there. While that connection is down (it
 * reconnects every second) pings are missed, as any websocket client must expect of a
 * dropped socket; the Subscription and the data are unchanged.
 */
export class SubscriptionSockets {
  private readonly sockets = new WebSocketServer({ noServer: true });
  private readonly bound = new Map<string, Set<WebSocket>>();
  private readonly listener: PgListener;
  private heartbeat: NodeJS.Timeout | undefined;

  constructor(
    connection: string | pg.ClientConfig,
    private readonly options: SubscriptionSocketOptions
  ) {
    this.listener = new PgListener(
      connection,
      SUBSCRIPTION_PING_CHANNEL,
      { notification: (payload) => payload && this.ping(payload) },
      'websocket Subscription pings lost; listening again in a second',
      options.logger
    );
  }

  static forKnex(knex: Knex, options: SubscriptionSocketOptions): SubscriptionSockets {
    return new SubscriptionSockets((knex.client as { config: { connection: string | pg.ClientConfig } }).config.connection, options);
  }

  /** Starts listening for pings and takes the server's websocket upgrades on SUBSCRIPTION_SOCKET_PATH. */
  async start(server: http.Server): Promise<void> {
    await this.listener.start();
    server.on('upgrade', (req: http.IncomingMessage, socket: Duplex, head: Buffer) => void this.upgrade(req, socket, head));
    this.heartbeat = setInterval(() => {
      for (const socket of this.sockets.clients) {
        const alive = socket as WebSocket & { alive?: boolean };
        if (alive.alive === false) {
          socket.terminate();
          continue;
        }
        alive.alive = false;
        socket.ping();
      }
    }, HEARTBEAT_MS);
    this.heartbeat.unref();
  }

  async stop(): Promise<void> {
    if (this.heartbeat) clearInterval(this.heartbeat);
    for (const socket of this.sockets.clients) socket.close(1001, 'server shutting down');
    await new Promise<void>((resolve) => this.sockets.close(() => resolve()));
    await this.listener.stop();
  }

  private ping(subscriptionId: string): void {
    for (const socket of this.bound.get(subscriptionId) ?? []) {
      if (socket.readyState === socket.OPEN) socket.send(`ping ${subscriptionId}`);
    }
  }

  private async upgrade(req: http.IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://localhost');
    if (url.pathname !== SUBSCRIPTION_SOCKET_PATH) {
      socket.destroy();
      return;
    }
    let principal: Principal | undefined;
    const token = url.searchParams.get('access_token') ?? bearerToken(req.headers.authorization ?? '');
    if (token || this.options.authRequired) {
      principal = token && this.options.verify ? await this.options.verify(token).catch(() => undefined) : undefined;
      if (!principal) {
        socket.end('HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Bearer error="invalid_token"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n');
        return;
      }
    }
    this.sockets.handleUpgrade(req, socket, head, (ws) => this.accept(ws, principal));
  }

  private accept(ws: WebSocket, principal: Principal | undefined): void {
    const alive = ws as WebSocket & { alive?: boolean };
    alive.alive = true;
    ws.on('pong', () => (alive.alive = true));
    const mine = new Set<string>();
    ws.on('message', (data) => {
      alive.alive = true;
      const text = data.toString().trim();
      const bind = /^bind\s+([A-Za-z0-9\-.]{1,64})$/.exec(text);
      if (!bind) {
        ws.send('error expected "bind <Subscription id>"');
        return;
      }
      void this.bind(ws, principal, bind[1], mine);
    });
    ws.on('close', () => {
      for (const id of mine) {
        const sockets = this.bound.get(id);
        sockets?.delete(ws);
        if (sockets?.size === 0) this.bound.delete(id);
      }
    });
  }

  /** Binds the socket to the Subscription if its token may read it and it is an active websocket Subscription. */
  private async bind(ws: WebSocket, principal: Principal | undefined, id: string, mine: Set<string>): Promise<void> {
    let reason: string | undefined;
    try {
      const store = principal ? new GuardedStore(this.options.repo, await accessFor(principal, this.options.repo, [], this.options.accessOptions)) : this.options.repo;
      const subscription = (await store.read('Subscription', id)).resource as Subscription;
      if (subscription.channel?.type !== 'websocket') reason = 'is not a websocket Subscription';
      else if (subscription.status !== 'active') reason = `is ${subscription.status}, not active`;
    } catch (err) {
      reason = (err as { status?: number }).status === 403 ? 'may not be read with this token' : 'is not here';
    }
    if (reason) {
      ws.send(`error ${id} Subscription/${id} ${reason}`);
      return;
    }
    mine.add(id);
    const sockets = this.bound.get(id) ?? new Set();
    sockets.add(ws);
    this.bound.set(id, sockets);
    ws.send(`bound ${id}`);
  }
}
