import type { Resource } from '@medplum/fhirtypes';
import { conflict } from '../core/outcome';
import { newRowsParameter } from './new-rows-parameter';
import { storedProfilesWritten } from './stored-profiles';
import { type Db, runSql } from './sql';
import { type WriteResult, writeResource } from './write-resource';
import { writeStatements } from './write-statements';

/** The resource at `position` could not be written (invalid, or its id taken): `cause` says why. */
export class NewResourceError extends Error {
  constructor(
    readonly position: number,
    override readonly cause: unknown
  ) {
    super(cause instanceof Error ? cause.message : String(cause));
  }
}

/** Rows per statement: large enough to amortise the round trip, small enough to overlap. */
const CHUNK = 250;
/** Types whose writes do more than store their row (write-resource.ts): written one by one through writeResource. */
const ONE_BY_ONE = ['SearchParameter', 'Subscription', 'Appointment', 'AppointmentResponse'];

/**
 * Creates many new resources whose ids the caller chose (a transaction's POST entries):
 * the same validation, indexing, versioning and history as writeResource, but one
 * multi-row INSERT per type and chunk instead of a round trip per resource — a Synthea
 * patient is a few thousand of them. An id that is taken fails the whole call (409).
 * SearchParameters change the schema as they are written and go one by one.
 *
 * `db` must be a transaction: each chunk is sent as soon as it is built and the next one
 * is built while PostgreSQL inserts it, so this process's CPU and the database's overlap.
 */
export async function writeNewResources(db: Db, resources: readonly (Resource & { id: string })[]): Promise<WriteResult[]> {
  const results: WriteResult[] = new Array(resources.length);
  const byType = new Map<string, number[]>();
  for (let i = 0; i < resources.length; i++) {
    const positions = byType.get(resources[i].resourceType) ?? [];
    positions.push(i);
    byType.set(resources[i].resourceType, positions);
  }
  const lastUpdated = new Date();
  // One statement in flight: the next chunk is built while PostgreSQL runs it.
  let inFlight: Promise<void> | undefined;
  try {
    // Replies last: an AppointmentResponse updates an Appointment the same transaction may be creating.
    const types = [...byType].sort(([a], [b]) => Number(a === 'AppointmentResponse') - Number(b === 'AppointmentResponse'));
    for (const [resourceType, positions] of types) {
      // SearchParameters change the schema, Subscriptions the notification trigger, Appointments check for double booking, AppointmentResponses update their Appointment: one by one, through writeResource.
      if (ONE_BY_ONE.includes(resourceType)) {
        await inFlight;
        inFlight = undefined;
        for (const i of positions) {
          const resource = resources[i];
          results[i] = await writeResource(db, { method: 'POST', resourceType, id: resource.id, resource }).catch((err: unknown) => {
            throw new NewResourceError(i, err);
          });
        }
        continue;
      }
      const { key, insertMany: statement } = writeStatements(resourceType);
      for (let start = 0; start < positions.length; start += CHUNK) {
        const part = positions.slice(start, start + CHUNK);
        const built = newRowsParameter(
          resourceType,
          part.map((i) => resources[i]),
          lastUpdated,
          (at, err) => new NewResourceError(part[at], err)
        );
        part.forEach((i, at) => (results[i] = built.results[at]));
        await inFlight;
        inFlight = runSql(db, `insert-many:${key}`, statement, [lastUpdated, built.parameter]).then((result) => {
          if (result.rowCount !== part.length) {
            throw new NewResourceError(part[0], conflict(`${part.length - (result.rowCount ?? 0)} of the new ${resourceType} ids are already taken`));
          }
        });
        // Awaited before the next statement or below; this only keeps it from counting as unhandled meanwhile.
        inFlight.catch(() => undefined);
      }
    }
    await inFlight;
  } catch (err) {
    // Never return while a statement still runs on the caller's transaction.
    await inFlight?.catch(() => undefined);
    throw err;
  }
  // Profiles: the claims of the next writes are checked against them.
  if (byType.has('StructureDefinition')) await storedProfilesWritten(db);
  return results;
}
