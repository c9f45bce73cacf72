import type { Knex } from 'knex';

/** Parameter values taken from the loaded data (the originals, so they exist at every size). */
export interface QueryValues {
  /** The patient with the most heart rates (8867-4) since 2015, so that query has rows to return. */
  patientId: string;
  patientObservations: number;
  patientHeartRates: number;
  patientIdentifier: string;
  /** The most frequent family name among the Patients. */
  family: string;
  /** The Observation code (system|code) with the most valueQuantity values above 100. */
  quantityCode: string;
  quantityCodeCount: number;
}

export interface BenchQuery {
  name: string;
  /** Scoped to one patient: the "p95 under 20 ms at the large size" target applies. */
  patientScoped: boolean;
  /** The request path under the FHIR base (for paging: the first page). */
  path: string;
  /** Set for the paging walk: follow `next` until this many entries were read. */
  pageThrough?: number;
}

export const PAGE_SIZE = 100;
export const PAGE_THROUGH = 5000;

const enc = encodeURIComponent;

/** The searches of issue 3's benchmark, with the loaded data's values filled in. */
export function benchQueries(v: QueryValues): BenchQuery[] {
  const patient = enc(`Patient/${v.patientId}`);
  return [
    { name: 'Patient?name', patientScoped: false, path: `Patient?name=${enc(v.family)}` },
    { name: 'Patient?identifier', patientScoped: false, path: `Patient?identifier=${enc(v.patientIdentifier)}` },
    {
      name: 'Obs?patient&code&date',
      patientScoped: true,
      path: `Observation?patient=${patient}&code=${enc('http://loinc.org|8867-4')}&date=ge2015`,
    },
    { name: 'Obs?code&value-quantity', patientScoped: false, path: `Observation?code=${enc(v.quantityCode)}&value-quantity=gt100` },
    { name: 'Encounter?patient&_sort', patientScoped: true, path: `Encounter?patient=${patient}&_sort=-date&_count=10` },
    { name: 'Obs?subject:Patient.name', patientScoped: false, path: `Observation?subject:Patient.name=${enc(v.family)}` },
    { name: 'Condition?patient&_include', patientScoped: true, path: `Condition?patient=${patient}&_include=Condition:patient` },
    { name: 'Patient?_has:Obs:code', patientScoped: false, path: `Patient?_has:Observation:patient:code=${enc(v.quantityCode)}` },
    { name: 'MedReq?status&patient', patientScoped: true, path: `MedicationRequest?status=active&patient=${patient}` },
    { name: `Obs paging ${PAGE_THROUGH}`, patientScoped: false, path: `Observation?_count=${PAGE_SIZE}`, pageThrough: PAGE_THROUGH },
  ];
}

/**
 * Picks the values from the content (JSONB), not from the search columns, so the
 * choice does not depend on the index design under test.
 */
export async function pickQueryValues(knex: Knex): Promise<QueryValues> {
  const heaviest = await first<{ id: string; n: number }>(
    knex,
    `SELECT substr(content->'subject'->>'reference', 9) AS id, count(*)::int AS n
       FROM "Observation" WHERE content->'subject'->>'reference' LIKE 'Patient/%' AND NOT deleted
        AND content->'code'->'coding' @> '[{"system": "http://loinc.org", "code": "8867-4"}]'
        AND content->>'effectiveDateTime' >= '2015'
      GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 1`
  );
  const observations = await first<{ n: number }>(
    knex,
    `SELECT count(*)::int AS n FROM "Observation" WHERE content->'subject'->>'reference' = ? AND NOT deleted`,
    [`Patient/${heaviest.id}`]
  );
  const identifier = await first<{ system: string; value: string }>(
    knex,
    `SELECT i->>'system' AS system, i->>'value' AS value
       FROM "Patient", jsonb_array_elements(content->'identifier') i
      WHERE id = ? AND i->>'system' IS NOT NULL AND i->>'value' IS NOT NULL LIMIT 1`,
    [heaviest.id]
  );
  const family = await first<{ family: string }>(
    knex,
    `SELECT n->>'family' AS family FROM "Patient", jsonb_array_elements(content->'name') n
      WHERE NOT deleted AND n->>'family' IS NOT NULL GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 1`
  );
  const quantity = await first<{ system: string; code: string; n: number }>(
    knex,
    `SELECT content->'code'->'coding'->0->>'system' AS system, content->'code'->'coding'->0->>'code' AS code, count(*)::int AS n
       FROM "Observation"
      WHERE NOT deleted AND jsonb_typeof(content->'valueQuantity'->'value') = 'number'
        AND (content->'valueQuantity'->>'value')::numeric > 100
      GROUP BY 1, 2 ORDER BY 3 DESC, 2 LIMIT 1`
  );
  return {
    patientId: heaviest.id,
    patientObservations: observations.n,
    patientHeartRates: heaviest.n,
    patientIdentifier: `${identifier.system}|${identifier.value}`,
    family: family.family,
    quantityCode: `${quantity.system}|${quantity.code}`,
    quantityCodeCount: quantity.n,
  };
}

async function first<T>(knex: Knex, sql: string, bindings: readonly Knex.RawBinding[] = []): Promise<T> {
  const result = await knex.raw(sql, bindings);
  const row = (result as { rows: T[] }).rows[0];
  if (!row) {
    throw new Error(`no data for the benchmark's query values: ${sql.split('\n')[0]}`);
  }
  return row;
}

/** Live rows per table of interest, for the report. */
export async function tableSizes(knex: Knex, types: readonly string[]): Promise<Record<string, number>> {
  const sizes: Record<string, number> = {};
  for (const type of types) {
    const result = await knex.raw(`SELECT count(*)::int AS n FROM "${type}" WHERE NOT deleted`);
    sizes[type] = (result as { rows: { n: number }[] }).rows[0].n;
  }
  return sizes;
}
