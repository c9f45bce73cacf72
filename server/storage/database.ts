import knexFactory, { type Knex } from 'knex';
import pg from 'pg';
import { attachGenericPlanPool } from './generic-plans';

// count(*) is bigint; our counts fit in a JS number, so return numbers, not strings.
pg.types.setTypeParser(pg.types.builtins.INT8, (value: string) => Number(value));

export function createKnex(url: string, poolMax: number): Knex {
  const knex = knexFactory({
    client: 'pg',
    connection: url,
    pool: { min: 0, max: poolMax },
    acquireConnectionTimeout: 30000,
  });
  attachGenericPlanPool(knex, url, poolMax);
  return knex;
}

/** PostgreSQL error codes we turn into FHIR outcomes. */
export const PG_UNIQUE_VIOLATION = '23505';
export const PG_SERIALIZATION_FAILURE = '40001';
export const PG_DEADLOCK = '40P01';

export function pgErrorCode(err: unknown): string | undefined {
  return typeof err === 'object' && err !== null && 'code' in err ? String((err as { code: unknown }).code) : undefined;
}
