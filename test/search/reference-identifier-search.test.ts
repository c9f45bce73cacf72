import type { Resource } from '@medplum/fhirtypes';
import { parseSearchRequest } from '../../server/search/parse-search-request';
import { indexedParams } from '../../server/search/supported-parameters';
import { officialValues } from './independent-evaluation';
import { loadHl7Examples, uniqueById } from './search-fixtures';
import { createResourceTable, createSearchTestDatabase, insertResources, searchIds, type SearchTestDatabase } from './search-test-database';

/** The HL7 example types whose references carry `Reference.identifier`. */
const TYPES = ['AuditEvent', 'Task', 'Claim', 'ClaimResponse', 'Communication', 'Provenance', 'Coverage', 'PaymentReconciliation', 'Invoice', 'Media'];
const options = { strict: true, defaultCount: 20, maxCount: 1000 };
const esc = (s: string): string => s.replace(/[\\,|$]/g, (c) => `\\${c}`);

interface Ident {
  system?: string;
  value: string;
}

function identifiers(resource: Resource, code: string): Ident[] {
  return officialValues(resource, code).flatMap((v) => {
    const id = (v as { identifier?: { system?: string; value?: string } } | null)?.identifier;
    return typeof id?.value === 'string' && id.value !== '' ? [{ system: id.system, value: id.value }] : [];
  });
}

describe('reference :identifier search over the HL7 examples', () => {
  let db: SearchTestDatabase;
  let resources: Resource[];

  beforeAll(async () => {
    db = await createSearchTestDatabase();
    for (const type of TYPES) await createResourceTable(db.knex, type);
    resources = uniqueById(loadHl7Examples(TYPES));
    await insertResources(db.knex, resources);
  });

  afterAll(async () => {
    await db?.drop();
  });

  test('code:identifier=system|value, =value and =|value find the resources whose reference carries that identifier', async () => {
    let checked = 0;
    for (const type of TYPES) {
      const ofType = resources.filter((r) => r.resourceType === type);
      for (const param of [...indexedParams(type).values()].filter((p) => p.def.type === 'reference')) {
        const code = param.def.code;
        const byId = new Map(ofType.map((r) => [r.id as string, identifiers(r, code)]));
        const all = [...byId.values()].flat();
        for (const ident of all.slice(0, 3)) {
          const check = async (value: string, match: (i: Ident) => boolean): Promise<void> => {
            const expected = [...byId].filter(([, ids]) => ids.some(match)).map(([id]) => id).sort();
            const actual = (await searchIds(db.knex, parseSearchRequest(type, { [`${code}:identifier`]: value }, options))).sort();
            expect({ query: `${type}?${code}:identifier=${value}`, ids: actual }).toEqual({ query: `${type}?${code}:identifier=${value}`, ids: expected });
            checked++;
          };
          await check(esc(ident.value), (i) => i.value === ident.value);
          if (ident.system !== undefined) {
            await check(`${esc(ident.system)}|${esc(ident.value)}`, (i) => i.system === ident.system && i.value === ident.value);
            await check(`${esc(ident.system)}x|${esc(ident.value)}`, () => false);
          } else {
            await check(`|${esc(ident.value)}`, (i) => i.system === undefined && i.value === ident.value);
          }
        }
      }
    }
    expect(checked).toBeGreaterThan(20);
  });

  test('an identifier never matches a plain reference search, and a reference never matches :identifier', async () => {
    const audit = resources.find((r) => r.resourceType === 'AuditEvent' && identifiers(r, 'agent').length > 0) as Resource;
    const ident = identifiers(audit, 'agent')[0];
    expect(await searchIds(db.knex, parseSearchRequest('AuditEvent', { agent: esc(ident.value) }, options))).not.toContain(audit.id);
    const referenced = resources.find((r) => r.resourceType === 'Task' && (r as { for?: { reference?: string } }).for?.reference) as { id: string; for: { reference: string } };
    expect(await searchIds(db.knex, parseSearchRequest('Task', { 'subject:identifier': referenced.for.reference }, options))).toEqual([]);
  });
});
