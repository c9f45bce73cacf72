import type { Resource } from '@medplum/fhirtypes';
import { isOperationOutcomeError } from '../../server/core/outcome';
import { parseSearchRequest } from '../../server/search/parse-search-request';
import { Repository } from '../../server/storage/repository';
import { foldText, officialValues } from './independent-evaluation';
import { loadHl7Examples, loadSynthea, uniqueById } from './search-fixtures';
import { createResourceTable, createSearchTestDatabase, insertResources, markDeleted, searchIds, type SearchTestDatabase } from './search-test-database';

const TYPES = ['Patient', 'Practitioner', 'Organization', 'Encounter', 'Observation', 'Condition', 'Provenance'];
const strict = { strict: true, defaultCount: 20, maxCount: 1000 };
const lenient = { ...strict, strict: false };

/** Relative references a parameter holds, as `Type/id` (read from the resource by the official expression). */
function refsOf(resource: Resource, code: string): string[] {
  const out: string[] = [];
  for (const v of officialValues(resource, code)) {
    const m = /^([A-Z][A-Za-z]+)\/([A-Za-z0-9\-.]+)(\/_history\/.*)?$/.exec((v as { reference?: string }).reference ?? '');
    if (m) out.push(`${m[1]}/${m[2]}`);
  }
  return out;
}

function codings(resource: Resource, code: string): string[] {
  return officialValues(resource, code).flatMap((cc) => ((cc as { coding?: { system?: string; code?: string }[] }).coding ?? []).map((c) => `${c.system}|${c.code}`));
}

function stringsOf(resource: Resource, code: string): string[] {
  return officialValues(resource, code).flatMap((v) => {
    if (typeof v === 'string') return [v];
    const o = v as Record<string, unknown>;
    return ['family', 'given', 'prefix', 'suffix', 'text'].flatMap((k) => (Array.isArray(o[k]) ? (o[k] as string[]) : typeof o[k] === 'string' ? [o[k] as string] : []));
  });
}

const startsWith = (values: string[], prefix: string): boolean => values.some((v) => foldText(v).startsWith(foldText(prefix)));

describe('chained and reverse-chained (_has) search over Synthea and HL7 examples', () => {
  let db: SearchTestDatabase;
  let live: Resource[];

  const ofType = (type: string): Resource[] => live.filter((r) => r.resourceType === type);
  const keys = (rs: Resource[]): Set<string> => new Set(rs.map((r) => `${r.resourceType}/${r.id}`));
  /** Live resources of `type` whose `code` references one of `targets`. */
  const referring = (type: string, code: string, targets: Set<string>): Resource[] => ofType(type).filter((r) => refsOf(r, code).some((ref) => targets.has(ref)));
  /** Live resources of `type` that some live `sources` resource references through `code`. */
  const referredBy = (type: string, sources: Resource[], code: string): Resource[] => {
    const refs = new Set(sources.flatMap((s) => refsOf(s, code)));
    return ofType(type).filter((r) => refs.has(`${type}/${r.id}`));
  };
  const ids = (rs: Resource[]): string[] => rs.map((r) => r.id as string).sort();
  /**
   * Both SQL forms must agree: the single statement (chains as subqueries, as conditional
   * operations use it) and the repository's (chain targets resolved first, then inlined).
   */
  const search = async (type: string, query: Record<string, string | string[]>): Promise<string[]> => {
    const request = parseSearchRequest(type, { ...query, _count: '100000' }, { ...strict, maxCount: 100000 });
    const statement = (await searchIds(db.knex, request)).sort();
    const repository = (await new Repository(db.knex, { searchDefaultCount: 20, searchMaxCount: 100000 }).search(request)).resources.map((r) => r.id as string).sort();
    expect({ query, repository }).toEqual({ query, repository: statement });
    return statement;
  };

  beforeAll(async () => {
    db = await createSearchTestDatabase();
    for (const type of TYPES) await createResourceTable(db.knex, type);
    const resources = uniqueById([...loadHl7Examples(TYPES), ...loadSynthea(TYPES, 3)]);
    await insertResources(db.knex, resources);
    // Some targets and some sources deleted: neither may be matched through a chain.
    const deleted = new Set(resources.filter((r, i) => i % 11 === 3 && r.resourceType !== 'Organization'));
    for (const r of deleted) await markDeleted(db.knex, r);
    live = resources.filter((r) => !deleted.has(r));
  });

  afterAll(async () => {
    await db?.drop();
  });

  test('subject:Patient.family= finds Observations whose subject is a live Patient with that family name', async () => {
    const families = [...new Set(ofType('Patient').flatMap((p) => stringsOf(p, 'family')))].sort();
    expect(families.length).toBeGreaterThan(2);
    let selective = 0;
    for (const family of [families[0], families[families.length - 1], families[1].slice(0, 3)]) {
      const targets = keys(ofType('Patient').filter((p) => startsWith(stringsOf(p, 'family'), family)));
      const expected = ids(referring('Observation', 'subject', targets));
      if (expected.length > 0) selective++;
      expect({ family, ids: await search('Observation', { 'subject:Patient.family': family }) }).toEqual({ family, ids: expected });
    }
    expect(selective).toBeGreaterThan(0);
  });

  test('a reference with a single target type chains without a type modifier (patient.gender=female)', async () => {
    const targets = keys(ofType('Patient').filter((p) => officialValues(p, 'gender').includes('female')));
    const expected = ids(referring('Observation', 'patient', targets));
    expect(expected.length).toBeGreaterThan(0);
    expect(expected.length).toBeLessThan(ofType('Observation').length);
    expect(await search('Observation', { 'patient.gender': 'female' })).toEqual(expected);
    expect(await search('Observation', { 'patient:Patient.gender': 'female' })).toEqual(expected);
  });

  test('chains go several levels deep: Observation?encounter:Encounter.service-provider.name= and subject:Patient.general-practitioner.name=', async () => {
    const viaEncounters = (o: Resource): Resource[] => referring('Observation', 'encounter', keys(referring('Encounter', 'service-provider', keys([o]))));
    const orgName = stringsOf(ofType('Organization').find((o) => viaEncounters(o).length > 0) as Resource, 'name')[0];
    const orgs = keys(ofType('Organization').filter((o) => startsWith(stringsOf(o, 'name'), orgName)));
    const expected = ids(referring('Observation', 'encounter', keys(referring('Encounter', 'service-provider', orgs))));
    expect(expected.length).toBeGreaterThan(0);
    expect(await search('Observation', { 'encounter:Encounter.service-provider.name': orgName })).toEqual(expected);

    const practitioner = ofType('Practitioner').find((p) => referring('Patient', 'general-practitioner', keys([p])).length > 0) as Resource;
    const family = stringsOf(practitioner, 'family')[0];
    const gps = keys(ofType('Practitioner').filter((p) => startsWith(stringsOf(p, 'family'), family)));
    const patients = keys(ofType('Patient').filter((p) => refsOf(p, 'general-practitioner').some((r) => gps.has(r))));
    expect(await search('Encounter', { 'subject:Patient.general-practitioner:Practitioner.family': family })).toEqual(
      ids(referring('Encounter', 'subject', patients))
    );
  });

  test('a chain ORs its comma-separated values, ANDs with other parameters, and works over _id and tokens', async () => {
    const [a, b] = ofType('Patient').filter((p) => referring('Observation', 'subject', keys([p])).length > 0);
    expect(await search('Observation', { 'subject:Patient._id': `${a.id},${b.id}` })).toEqual(ids(referring('Observation', 'subject', keys([a, b]))));
    const code = codings(referring('Observation', 'subject', keys([a]))[0], 'code')[0];
    const expected = ids(referring('Observation', 'subject', keys([a, b])).filter((o) => codings(o, 'code').includes(code)));
    expect(await search('Observation', { 'subject:Patient._id': `${a.id},${b.id}`, code })).toEqual(expected);
  });

  test('_has:Observation:patient:code= finds the Patients of live Observations with that code', async () => {
    const counts = new Map<string, number>();
    for (const o of ofType('Observation')) for (const c of new Set(codings(o, 'code'))) counts.set(c, (counts.get(c) ?? 0) + 1);
    const codes = [...counts].filter(([, n]) => n > 1 && n < 40).map(([c]) => c).slice(0, 4);
    expect(codes.length).toBeGreaterThan(0);
    let selective = 0;
    for (const code of codes) {
      const observations = ofType('Observation').filter((o) => codings(o, 'code').includes(code));
      const expected = ids(referredBy('Patient', observations, 'patient'));
      if (expected.length > 0 && expected.length < ofType('Patient').length) selective++;
      expect({ code, ids: await search('Patient', { '_has:Observation:patient:code': code }) }).toEqual({ code, ids: expected });
    }
    expect(selective).toBeGreaterThan(0);
  });

  test('_has pages the same in small pages, whether the first candidates are probed one by one or the sources collected', async () => {
    const counts = new Map<string, number>();
    for (const o of ofType('Observation')) for (const c of new Set(codings(o, 'code'))) counts.set(c, (counts.get(c) ?? 0) + 1);
    const byFrequency = [...counts].sort((a, b) => b[1] - a[1]).map(([c]) => c);
    // The most common codes (most candidates qualify: probing fills a page) and rare ones (it does not).
    const codes = [...byFrequency.slice(0, 3), ...byFrequency.slice(-2)];
    const repository = new Repository(db.knex, { searchDefaultCount: 20, searchMaxCount: 1000 });
    for (const code of codes) {
      for (const extra of [{}, { gender: 'male,female' }, { _sort: '-_id' }]) {
        const query = { '_has:Observation:patient:code': code, ...extra };
        const whole = (await searchIds(db.knex, parseSearchRequest('Patient', { ...query, _count: '1000' }, strict)));
        for (const count of ['1', '2']) {
          const paged: string[] = [];
          let request = parseSearchRequest('Patient', { ...query, _count: count }, strict);
          for (let page = 0; page < 100; page++) {
            const result = await repository.search(request);
            paged.push(...result.resources.map((r) => r.id as string));
            if (!result.next) break;
            request = { ...request, cursor: result.next };
          }
          expect({ query, count, paged }).toEqual({ query, count, paged: whole });
        }
      }
    }
  });

  test('_has nests (_has:Encounter:patient:_has:Observation:encounter:code=) and combines with other parameters', async () => {
    const observation = ofType('Observation').find(
      (o) => referredBy('Patient', referredBy('Encounter', [o], 'encounter'), 'patient').length > 0
    ) as Resource;
    const code = codings(observation, 'code')[0];
    const observations = ofType('Observation').filter((o) => codings(o, 'code').includes(code));
    const encounters = referredBy('Encounter', observations, 'encounter');
    const patients = referredBy('Patient', encounters, 'patient');
    expect(patients.length).toBeGreaterThan(0);
    expect(await search('Patient', { '_has:Encounter:patient:_has:Observation:encounter:code': code })).toEqual(ids(patients));
    const gender = officialValues(patients[0], 'gender')[0] as string;
    expect(await search('Patient', { '_has:Encounter:patient:_has:Observation:encounter:code': code, gender })).toEqual(
      ids(patients.filter((p) => officialValues(p, 'gender').includes(gender)))
    );
    // Two _has parameters are ANDed: both kinds of resources must refer to the patient.
    const conditionPatients = keys(referredBy('Patient', ofType('Condition'), 'patient'));
    expect(await search('Patient', { '_has:Encounter:patient:_has:Observation:encounter:code': code, '_has:Condition:patient:_lastUpdated': 'ge2000' })).toEqual(
      ids(patients.filter((p) => conditionPatients.has(`Patient/${p.id}`)))
    );
  });

  test('a chain inside _has and _has inside a chain', async () => {
    const org = ofType('Organization').find((o) => referring('Encounter', 'service-provider', keys([o])).length > 0) as Resource;
    const encounters = referring('Encounter', 'service-provider', keys([org]));
    expect(await search('Patient', { '_has:Encounter:patient:service-provider._id': org.id as string })).toEqual(ids(referredBy('Patient', encounters, 'patient')));
    const patientsWithConditions = keys(referredBy('Patient', ofType('Condition'), 'patient'));
    expect(await search('Observation', { 'patient._has:Condition:patient:_lastUpdated': 'ge2000' })).toEqual(ids(referring('Observation', 'patient', patientsWithConditions)));
  });

  test('a chain without a type modifier over several target types searches each target type that has the parameter (performer.name=, subject.name=)', async () => {
    // The other targets of Observation.performer and .subject: empty tables, so that each chain can be planned.
    for (const type of ['PractitionerRole', 'CareTeam', 'RelatedPerson', 'Group', 'Device', 'Location']) await createResourceTable(db.knex, type);
    const named = (types: string[], prefix: string): Set<string> =>
      keys(live.filter((r) => types.includes(r.resourceType) && startsWith(stringsOf(r, 'name'), prefix)));
    const performers = live.filter((r) => r.resourceType === 'Observation').flatMap((o) => refsOf(o, 'performer'));
    const practitioner = ofType('Practitioner').find((p) => performers.includes(`Practitioner/${p.id}`) && stringsOf(p, 'name').length > 0) as Resource;
    const organization = ofType('Organization').find((o) => performers.includes(`Organization/${o.id}`) && stringsOf(o, 'name').length > 0);
    expect(practitioner).toBeDefined();
    // One prefix that names a practitioner performer, and (when there is one) an organisation performer too.
    const prefixes = [stringsOf(practitioner, 'name')[0].slice(0, 4), ...(organization ? [stringsOf(organization, 'name')[0].slice(0, 4)] : [])];
    for (const prefix of prefixes) {
      // performer: Practitioner, PractitionerRole, Organization, CareTeam, Patient, RelatedPerson; `name` is on four of them.
      const expected = ids(referring('Observation', 'performer', named(['Practitioner', 'Organization', 'Patient', 'RelatedPerson'], prefix)));
      expect(expected.length).toBeGreaterThan(0);
      expect({ prefix, ids: await search('Observation', { 'performer.name': prefix }) }).toEqual({ prefix, ids: expected });
    }
    const family = ofType('Patient').flatMap((p) => stringsOf(p, 'family'))[0];
    const bySubject = ids(referring('Observation', 'subject', named(['Patient', 'Group', 'Location', 'Device'], family)));
    expect(await search('Observation', { 'subject.name': family })).toEqual(bySubject);
    expect(await search('Observation', { 'subject:Patient.name': family })).toEqual(bySubject);
    // A chain whose next parameter no target has is unknown: a warning, or a 400 when strict.
    expect(parseSearchRequest('Observation', { 'subject.nonsense': 'x' }, lenient).warnings).toHaveLength(1);
    expect(() => parseSearchRequest('Observation', { 'subject.nonsense': 'x' }, strict)).toThrow(/nonsense/);
  });

  test('malformed chains are 400', () => {
    const error = (fn: () => unknown): string => {
      try {
        fn();
      } catch (err) {
        if (isOperationOutcomeError(err) && err.status === 400) return err.message;
        throw err;
      }
      throw new Error('expected a 400');
    };
    for (const options of [strict, lenient]) {
      expect(error(() => parseSearchRequest('Observation', { 'code.name': 'x' }, options))).toMatch(/reference/);
      expect(error(() => parseSearchRequest('Observation', { 'subject:NotAType.name': 'x' }, options))).toMatch(/NotAType/);
      expect(error(() => parseSearchRequest('Patient', { '_has:Observation:patient': 'x' }, options))).toMatch(/_has/);
      expect(error(() => parseSearchRequest('Patient', { '_has:Nope:patient:code': 'x' }, options))).toMatch(/Nope/);
      expect(error(() => parseSearchRequest('Patient', { '_has:Observation:code:code': 'x' }, options))).toMatch(/reference/);
      expect(error(() => parseSearchRequest('Observation', { 'patient._lastUpdated': '2020-13-45' }, options))).toBeTruthy();
    }
  });

  test('an unknown parameter at the end of a chain or _has is a warning naming the whole parameter, or a 400 when strict', () => {
    for (const key of ['subject:Patient.nonsense', '_has:Observation:patient:nonsense', 'subject:Patient.organization.nonsense', 'nonsense.name']) {
      const request = parseSearchRequest('Observation', { [key]: 'x', status: 'final' }, lenient);
      expect(request.filters).toHaveLength(1);
      expect(request.warnings.map((w) => w.expression)).toEqual([[key]]);
      expect(() => parseSearchRequest('Observation', { [key]: 'x' }, strict)).toThrow(/nonsense/);
    }
  });
});
