import type { Knex } from 'knex';
import type { Db } from './sql';
import type { WriteOperation, WriteResult } from './write-resource';

type Write = (db: Db, op: WriteOperation) => Promise<WriteResult>;

/** Serialises Subscription writes (pg_advisory_xact_lock key; any fixed number no other lock uses). */
const SUBSCRIPTIONS_LOCK_KEY = 7_411_902_003;

/**
 * A Subscription write also decides whether writes are watched at all. The trigger that
 * queues notifications (migration 010) costs every write statement even when it finds
 * nothing to queue, so it is enabled only while some Subscription is active: in the
 * Subscription write's own transaction, under a lock that serialises Subscription writes
 * (taken before anything is written, so two of them cannot deadlock on resource_history),
 * the trigger is switched on or off to match. ALTER TABLE waits for the writes in flight
 * and holds new ones until commit, which happens only when the first Subscription becomes
 * active or the last one stops.
 */
export async function writeSubscription(db: Db, op: WriteOperation, write: Write): Promise<WriteResult> {
  const apply = async (tx: Knex.Transaction): Promise<WriteResult> => {
    await tx.raw('SELECT pg_advisory_xact_lock(?)', [SUBSCRIPTIONS_LOCK_KEY]);
    const result = await write(tx, op);
    await matchTriggerToSubscriptions(tx);
    return result;
  };
  return db.isTransaction ? apply(db as Knex.Transaction) : (db as Knex).transaction(apply);
}

/** Enables the notification trigger when an active Subscription exists, disables it otherwise. */
export async function matchTriggerToSubscriptions(tx: Knex.Transaction): Promise<void> {
  const { rows } = await tx.raw(`
    SELECT EXISTS (SELECT 1 FROM "Subscription" WHERE NOT deleted AND content->>'status' = 'active') AS wanted,
           (SELECT tgenabled <> 'D' FROM pg_trigger WHERE tgname = 'fhir_subscription_enqueue' AND tgrelid = 'resource_history'::regclass) AS enabled`);
  const { wanted, enabled } = rows[0] as { wanted: boolean; enabled: boolean };
  if (wanted === enabled) return;
  await tx.raw(`ALTER TABLE resource_history ${wanted ? 'ENABLE' : 'DISABLE'} TRIGGER fhir_subscription_enqueue`);
}
