import type { Resource, Subscription } from '@medplum/fhirtypes';
import type { Knex } from 'knex';
import type { Logger } from 'pino';
import { isOperationOutcomeError } from '../core/outcome';
import { resourceToXml } from '../fhir/resource-to-xml';
import { parseSearchRequest } from '../search/parse-search-request';
import type { Repository } from '../storage/repository';
import { subscriptionCriteria } from '../storage/subscription-rules';

/** The PostgreSQL channel websocket notifications go out on: its payload is the Subscription's id. */
export const SUBSCRIPTION_PING_CHANNEL = 'fhir_subscription_ping';

export interface DeliveryOptions {
  /** Queue rows handled per step. */
  batchSize: number;
  /** Per notification request. */
  timeoutMs: number;
  /** Attempts before the Subscription is set to `error`. */
  maxAttempts: number;
}

interface QueueRow {
  seq: string;
  subscription_id: string;
  resource_type: string;
  id: string;
  version_id: number;
  attempts: number;
}

/** Seconds before attempt n + 1: 1, 5, 30, 120, 600 … */
const BACKOFF_SECONDS = [1, 5, 30, 120, 600];

/**
 * One step of rest-hook and websocket delivery (R4 subscription.html#2.46.7.1): queued versions whose
 * time has come (migration 010 queues them in the write's transaction), each checked
 * against its Subscription's criteria, then POSTed to the channel's endpoint with its
 * headers, with the resource as FHIR JSON or XML (the channel's payload type) or an
 * empty body when it has none; for a websocket channel, the bound sockets are pinged
 * instead (pingSockets). A 2xx ends the row; anything else is retried with backoff, and
 * after `maxAttempts` the Subscription is set to `error` (with the reason in `error`)
 * and its rows are dropped. Rows are locked FOR UPDATE SKIP LOCKED, so processes share
 * the queue without delivering twice. Returns false when nothing was due.
 */
export async function runDeliveryStep(knex: Knex, repo: Repository, logger: Logger, options: DeliveryOptions): Promise<boolean> {
  return knex.transaction(async (tx) => {
    const rows: QueueRow[] = (
      await tx.raw(
        `SELECT seq, subscription_id, resource_type, id, version_id, attempts FROM subscription_queue
          WHERE next_attempt_at <= now() ORDER BY seq LIMIT ? FOR UPDATE SKIP LOCKED`,
        [options.batchSize]
      )
    ).rows;
    if (rows.length === 0) return false;
    const subscriptions = new Map<string, Subscription | undefined>();
    for (const row of rows) {
      if (!subscriptions.has(row.subscription_id)) subscriptions.set(row.subscription_id, await activeSubscription(repo, row.subscription_id));
      const subscription = subscriptions.get(row.subscription_id);
      let failure: string | undefined;
      try {
        if (subscription && (await matches(repo, subscription, row))) {
          if (subscription.channel.type === 'websocket') await pingSockets(tx, subscription.id as string);
          else await notify(repo, subscription, row, options.timeoutMs);
        }
      } catch (err) {
        failure = err instanceof Error ? err.message : String(err);
      }
      if (failure === undefined) {
        await tx.raw('DELETE FROM subscription_queue WHERE seq = ?', [row.seq]);
        continue;
      }
      const attempts = row.attempts + 1;
      if (attempts < options.maxAttempts) {
        const wait = BACKOFF_SECONDS[Math.min(attempts - 1, BACKOFF_SECONDS.length - 1)];
        await tx.raw(`UPDATE subscription_queue SET attempts = ?, last_error = ?, next_attempt_at = now() + make_interval(secs => ?) WHERE seq = ?`, [attempts, failure, wait, row.seq]);
        continue;
      }
      logger.warn({ subscription: row.subscription_id, error: failure }, 'Subscription notifications keep failing: set to error');
      await tx.raw('DELETE FROM subscription_queue WHERE subscription_id = ?', [row.subscription_id]);
      if (subscription) await setError(repo, subscription, failure);
      subscriptions.set(row.subscription_id, undefined);
    }
    return true;
  });
}

async function activeSubscription(repo: Repository, id: string): Promise<Subscription | undefined> {
  try {
    const subscription = (await repo.read('Subscription', id)).resource as Subscription;
    return subscription.status === 'active' && !expired(subscription) ? subscription : undefined;
  } catch (err) {
    if (isOperationOutcomeError(err) && (err.status === 404 || err.status === 410)) return undefined;
    throw err;
  }
}

function expired(subscription: Subscription): boolean {
  return subscription.end !== undefined && Date.parse(subscription.end) <= Date.now();
}

/** Whether the resource (as it is now) matches the criteria: the criteria's search, narrowed to its id. */
async function matches(repo: Repository, subscription: Subscription, row: QueueRow): Promise<boolean> {
  const { resourceType, query } = subscriptionCriteria(subscription.criteria as string);
  if (resourceType !== row.resource_type) return false;
  const request = parseSearchRequest(resourceType, { ...query, _id: row.id }, { strict: true, defaultCount: 1, maxCount: 1 });
  request.total = 'none';
  return (await repo.search(request)).resources.length > 0;
}

/**
 * A websocket channel: every process holding a socket bound to the Subscription pings it
 * (http/subscription-sockets.ts). PostgreSQL sends the notification when this step
 * commits, together with the queue row's deletion.
 */
async function pingSockets(tx: Knex.Transaction, subscriptionId: string): Promise<void> {
  await tx.raw('SELECT pg_notify(?, ?)', [SUBSCRIPTION_PING_CHANNEL, subscriptionId]);
}

async function notify(repo: Repository, subscription: Subscription, row: QueueRow, timeoutMs: number): Promise<void> {
  const channel = subscription.channel;
  const headers: Record<string, string> = {};
  for (const header of channel.header ?? []) {
    const at = header.indexOf(':');
    headers[header.slice(0, at).trim()] = header.slice(at + 1).trim();
  }
  let body: string | undefined;
  if (channel.payload) {
    const resource: Resource | undefined = (await repo.vread(row.resource_type, row.id, row.version_id)).resource;
    const type = channel.payload.split(';')[0].trim();
    const xml = type.endsWith('xml');
    body = xml ? resourceToXml(resource as Resource) : JSON.stringify(resource);
    headers['Content-Type'] = xml ? type : 'application/fhir+json';
  }
  // The notification's target is the channel's own URL: without payload R4 calls for a POST with no body.
  const res = await fetch(channel.endpoint as string, { method: 'POST', headers, body, signal: AbortSignal.timeout(timeoutMs), redirect: 'manual' });
  await res.arrayBuffer().catch(() => undefined);
  if (res.status < 200 || res.status >= 300) throw new Error(`${channel.endpoint} answered ${res.status}`);
}

async function setError(repo: Repository, subscription: Subscription, reason: string): Promise<void> {
  const current = (await repo.read('Subscription', subscription.id as string)).resource as Subscription & { id: string };
  if (current.status !== 'active') return;
  await repo.update({ ...current, status: 'error', error: `Notifications failed: ${reason}`.slice(0, 1000) });
}
