import knexFactory, { type Knex } from 'knex';
import type { Db } from './sql';

/**
 * A second, small pool beside each pool of createKnex, whose connections run every
 * statement with its generic plan (`plan_cache_mode = force_generic_plan`). For named
 * statements whose shape fixes the plan whatever the values: the narrowed patient
 * searches (search-reads.ts, a materialized CTE over one index) and reads by ids.
 *
 * Why: PostgreSQL's own rule (`auto`) takes the generic plan after five runs only when
 * its estimate is no dearer than the custom plans', and a parameter's estimate is the
 * default selectivity (4,291 rows of 10× Synthea Observations) while a real patient's
 * value estimates ~50: so it plans again on every run. On these wide tables (48 indexes
 * on Observation, each partial index's predicate proved against the query) that planning
 * cost more than the execution: `Observation?patient=X&code=…&date=ge…` 0.49 ms of
 * planning for 0.25 ms of execution, and 0.011 ms with the generic plan (the same plan).
 *
 * A pool of its own rather than a SET on shared connections: knex's query builder and
 * every unnamed statement keep their custom plans, with no SET/RESET round trips.
 */
const companions = new WeakMap<Knex, Knex>();

/** Connections of the companion: a quarter of the pool's, at least two. */
function companionSize(poolMax: number): number {
  return Math.max(2, Math.ceil(poolMax / 4));
}

/** Gives `knex` its generic-plan companion, destroyed with it. */
export function attachGenericPlanPool(knex: Knex, url: string, poolMax: number): void {
  const companion = knexFactory({
    client: 'pg',
    connection: url,
    pool: {
      min: 0,
      max: companionSize(poolMax),
      afterCreate(connection: { query(sql: string, done: (err: Error | null) => void): void }, done: (err: Error | null, connection: unknown) => void) {
        connection.query('SET plan_cache_mode = force_generic_plan', (err) => done(err, connection));
      },
    },
    acquireConnectionTimeout: 30000,
  });
  companions.set(knex, companion);
  const client = knex.client as { destroy(callback?: (err?: unknown) => void): Promise<void> };
  const destroy = client.destroy.bind(client);
  client.destroy = async (callback) => {
    await companion.destroy();
    return destroy(callback);
  };
}

/**
 * Where a statement whose plan its shape fixes runs: the companion of a pool, or `db`
 * itself for a transaction (its statements must see its snapshot) or a pool without one.
 */
export function genericPlans(db: Db): Db {
  if ((db as Knex.Transaction).isTransaction) return db;
  return companions.get(db as Knex) ?? db;
}
