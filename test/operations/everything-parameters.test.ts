import type { Bundle, BundleEntry, CapabilityStatement, Resource } from '@medplum/fhirtypes';
import { fhirRequest } from '../support/fhir-client';
import { startTestServer, type TestServer } from '../support/test-server';

/**
 * Patient/$everything on a small record built here, where every resource and time is
 * known: what belongs to a record and what does not, `_since`, `start`/`end`, paging
 * while others write, errors, and the CapabilityStatement.
 */
let server: TestServer;

beforeAll(async () => {
  server = await startTestServer();
});

afterAll(async () => {
  await server?.stop();
});

async function create<T extends Resource>(resource: T): Promise<T & { id: string; meta: { lastUpdated: string } }> {
  const res = await fhirRequest('POST', `${server.base}/${resource.resourceType}`, { body: resource });
  expect(res.status).toBe(201);
  return res.body;
}

async function update<T extends Resource>(resource: T): Promise<T & { id: string; meta: { lastUpdated: string } }> {
  const res = await fhirRequest('PUT', `${server.base}/${resource.resourceType}/${resource.id}`, { body: resource });
  expect(res.status).toBe(200);
  return res.body;
}

function ref(resource: { resourceType: string; id?: string }): string {
  return `${resource.resourceType}/${resource.id}`;
}

function observation(patient: Resource, extra: Record<string, unknown> = {}): Resource {
  return { resourceType: 'Observation', status: 'final', code: { text: 'weight' }, subject: { reference: ref(patient) }, ...extra } as Resource;
}

function encounter(patient: Resource, extra: Record<string, unknown> = {}): Resource {
  return {
    resourceType: 'Encounter',
    status: 'finished',
    class: { system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode', code: 'AMB' },
    subject: { reference: ref(patient) },
    ...extra,
  } as Resource;
}

async function everything(url: string): Promise<{ entries: BundleEntry[]; pages: Bundle[] }> {
  const pages: Bundle[] = [];
  let next: string | undefined = url;
  while (next) {
    const res: { status: number; body: Bundle } = await fhirRequest<Bundle>('GET', next);
    expect(res.status).toBe(200);
    pages.push(res.body);
    next = res.body.link?.find((l) => l.relation === 'next')?.url;
  }
  return { entries: pages.flatMap((p) => p.entry ?? []), pages };
}

function keys(entries: BundleEntry[], mode?: string): string[] {
  return entries.filter((e) => (mode ? e.search?.mode === mode : e.search?.mode !== 'outcome')).map((e) => ref(e.resource as Resource)).sort();
}

test('a record: the patient, patients linked to it and what refers to it (match), the supporting resources they refer to (include); not what another patient owns, not unreferenced resources', async () => {
  const organization = await create({ resourceType: 'Organization', name: 'Clinic' });
  const practitioner = await create({ resourceType: 'Practitioner', name: [{ family: 'Seen' }] });
  const stranger = await create({ resourceType: 'Practitioner', name: [{ family: 'Unseen' }] });
  const patient = await create({ resourceType: 'Patient', managingOrganization: { reference: ref(organization) } });
  const other = await create({ resourceType: 'Patient' });
  const othersEncounter = await create(encounter(other));
  const linked = await create({ resourceType: 'Patient', link: [{ other: { reference: ref(patient) }, type: 'seealso' }] });
  const visit = await create(encounter(patient, { participant: [{ individual: { reference: ref(practitioner) } }] }));
  // Refers to another patient's Encounter: a reference into a compartment type is not followed.
  const weight = await create(observation(patient, { encounter: { reference: ref(othersEncounter) } }));
  await create(observation(other, { performer: [{ reference: ref(stranger) }] }));

  const { entries, pages } = await everything(`${server.base}/Patient/${patient.id}/$everything`);
  expect(pages).toHaveLength(1);
  expect(keys(entries, 'match')).toEqual([ref(patient), ref(linked), ref(visit), ref(weight)].sort());
  expect(keys(entries, 'include')).toEqual([ref(organization), ref(practitioner)].sort());
  expect(ref(entries[0].resource as Resource)).toBe(ref(patient));
  expect(pages[0].link).toEqual([{ relation: 'self', url: `${server.base}/Patient/${patient.id}/$everything` }]);
  // The whole record on one page: Bundle.total counts its matches.
  expect(pages[0].total).toBe(4);
});

test('_since: what changed at or after the instant, and the supporting resources a changed resource refers to', async () => {
  const practitioner = await create({ resourceType: 'Practitioner', name: [{ family: 'Old' }] });
  const newcomer = await create({ resourceType: 'Practitioner', name: [{ family: 'New' }] });
  const patient = await create({ resourceType: 'Patient' });
  const first = await create(encounter(patient, { participant: [{ individual: { reference: ref(practitioner) } }] }));
  const weight = await create(observation(patient));

  const changed = await update({ ...weight, status: 'amended' } as Resource);
  const since = encodeURIComponent(changed.meta.lastUpdated);
  const url = `${server.base}/Patient/${patient.id}/$everything?_since=${since}`;
  expect(keys((await everything(url)).entries)).toEqual([ref(weight)]);

  // A supporting resource changed since then comes, though only an older resource refers to it…
  await update({ ...practitioner, active: true });
  expect(keys((await everything(url)).entries)).toEqual([ref(practitioner), ref(weight)].sort());
  // …and an unchanged one comes when a changed resource refers to it.
  const second = await create(encounter(patient, { participant: [{ individual: { reference: ref(newcomer) } }] }));
  expect(keys((await everything(url)).entries)).toEqual([ref(practitioner), ref(newcomer), ref(second), ref(weight)].sort());
  expect(keys((await everything(`${server.base}/Patient/${patient.id}/$everything`)).entries)).toContain(ref(first));
});

test('start / end: care dates (the clinical date, else the act’s own dates, any of which may overlap); resources without one, and types without care dates (Coverage, Condition), stay', async () => {
  const patient = await create({ resourceType: 'Patient' });
  const early = await create(encounter(patient, { period: { start: '2019-03-01T10:00:00Z', end: '2019-03-01T11:00:00Z' } }));
  const late = await create(encounter(patient, { period: { start: '2021-06-01T10:00:00Z', end: '2021-06-01T11:00:00Z' } }));
  // Care that overlaps a bound counts: it began on new year's eve and ended on new year's day.
  const overnight = await create(encounter(patient, { period: { start: '2019-12-31T22:00:00Z', end: '2020-01-01T02:00:00Z' } }));
  const undated = await create(observation(patient));
  const dated = await create(observation(patient, { effectiveDateTime: '2020-05-05' }));
  const claim = await create({
    resourceType: 'Claim',
    status: 'active',
    type: { text: 'professional' },
    use: 'claim',
    patient: { reference: ref(patient) },
    created: '2019-01-01',
    provider: { display: 'x' },
    priority: { text: 'normal' },
    insurance: [{ sequence: 1, focal: true, coverage: { display: 'c' } }],
  } as Resource);
  // A Condition is a state, not an act: no care date places it (search/care-date.ts), so it stays.
  const condition = await create({ resourceType: 'Condition', subject: { reference: ref(patient) }, code: { text: 'x' }, onsetDateTime: '2021-02-01', recordedDate: '2019-06-01' } as Resource);
  const prescription = await create({ resourceType: 'MedicationRequest', status: 'active', intent: 'order', subject: { reference: ref(patient) }, medicationCodeableConcept: { text: 'm' }, authoredOn: '2021-07-01' } as Resource);
  // Coverage has no care date: nothing says it lies outside.
  const coverage = await create({ resourceType: 'Coverage', status: 'active', beneficiary: { reference: ref(patient) }, payor: [{ reference: ref(patient) }] } as Resource);
  const base = `${server.base}/Patient/${patient.id}/$everything`;
  const always = [ref(patient), ref(undated), ref(dated), ref(overnight), ref(coverage), ref(condition)];
  expect(keys((await everything(`${base}?start=2020-01-01`)).entries)).toEqual([...always, ref(late), ref(prescription)].sort());
  expect(keys((await everything(`${base}?end=2020-12-31`)).entries)).toEqual([...always, ref(early), ref(claim)].sort());
  expect(keys((await everything(`${base}?start=2020-01-01&end=2020-12-31`)).entries)).toEqual([...always].sort());
  expect(keys((await everything(`${base}?start=2020-01-02&end=2020-12-31`)).entries)).toEqual(always.filter((k) => k !== ref(overnight)).sort());
  expect(keys((await everything(`${base}?end=2019-12-30`)).entries)).toEqual([ref(patient), ref(undated), ref(claim), ref(early), ref(condition), ref(coverage)].sort());
  expect(keys((await everything(`${base}?start=2021-07-01&end=2021-07-01`)).entries)).toEqual([ref(patient), ref(undated), ref(prescription), ref(coverage), ref(condition)].sort());
  // Paged, the total counts what the care dates select (the match entries of every page).
  const paged = await everything(`${base}?start=2020-01-01&_count=2`);
  const matches = paged.entries.filter((e) => e.search?.mode === 'match').length;
  expect(matches).toBeGreaterThan(2);
  expect((await fhirRequest<Bundle>('GET', `${base}?start=2020-01-01&_count=2`)).body.total).toBe(matches);
});

test('paging while others write: no entry twice, none of those present throughout missing, a resource created meanwhile still comes', async () => {
  const patient = await create({ resourceType: 'Patient' });
  const observations: string[] = [];
  for (let i = 0; i < 25; i++) observations.push(ref(await create(observation(patient, { valueString: `#${i}` }))));
  const res = await fhirRequest<Bundle>('GET', `${server.base}/Patient/${patient.id}/$everything?_count=10`);
  const seen = keys(res.body.entry ?? []);
  // More pages follow: the total is counted, the Patient and its 25 Observations.
  expect(res.body.total).toBe(26);
  // Delete one already seen and one not yet seen; create one.
  const [seenId, unseenId] = [observations[3], observations[20]];
  expect(seen).toContain(seenId);
  expect(seen).not.toContain(unseenId);
  for (const gone of [seenId, unseenId]) expect((await fhirRequest('DELETE', `${server.base}/${gone}`)).status).toBeLessThan(300);
  const added = ref(await create(observation(patient, { valueString: 'late' })));
  const nextUrl = res.body.link?.find((l) => l.relation === 'next')?.url as string;
  // Each page counts the record as it is then: two deleted, one added.
  expect((await fhirRequest<Bundle>('GET', nextUrl)).body.total).toBe(25);
  const rest = await everything(nextUrl);
  const all = [...seen, ...keys(rest.entries)];
  expect(new Set(all).size).toBe(all.length);
  expect(all.sort()).toEqual([ref(patient), ...observations.filter((o) => o !== unseenId), added].sort());
});

test('errors: unknown patient 404, deleted patient 410, malformed parameters 400, each an OperationOutcome', async () => {
  const unknown = await fhirRequest('GET', `${server.base}/Patient/no-such-patient/$everything`);
  expect(unknown.status).toBe(404);
  expect(unknown.body.resourceType).toBe('OperationOutcome');

  const patient = await create({ resourceType: 'Patient' });
  expect((await fhirRequest('DELETE', `${server.base}/Patient/${patient.id}`)).status).toBeLessThan(300);
  expect((await fhirRequest('GET', `${server.base}/Patient/${patient.id}/$everything`)).status).toBe(410);

  const alive = await create({ resourceType: 'Patient' });
  const base = `${server.base}/Patient/${alive.id}/$everything`;
  for (const query of ['_count=0', '_count=x', '_type=NotAType', '_since=yesterday', 'start=2020-13', '_cursor=garbage']) {
    const res = await fhirRequest('GET', `${base}?${query}`);
    expect([query, res.status, res.body.resourceType]).toEqual([query, 400, 'OperationOutcome']);
  }
  // A type-level cursor is not an instance-level one.
  const typeLevel = await fhirRequest<Bundle>('GET', `${server.base}/Patient/$everything?_count=1`);
  const cursor = new URL(typeLevel.body.link?.find((l) => l.relation === 'next')?.url as string).searchParams.get('_cursor');
  expect((await fhirRequest('GET', `${base}?_cursor=${cursor}`)).status).toBe(400);

  const bad = await fhirRequest('POST', base, { body: { resourceType: 'Patient' } });
  expect(bad.status).toBe(400);
});

test('unknown parameters are ignored with a warning in the Bundle, or refused with Prefer: handling=strict; _count above the maximum is lowered with a warning', async () => {
  const patient = await create({ resourceType: 'Patient' });
  const base = `${server.base}/Patient/${patient.id}/$everything`;
  const lenient = await fhirRequest<Bundle>('GET', `${base}?frobnicate=1&_count=1000000`);
  expect(lenient.status).toBe(200);
  const outcome = lenient.body.entry?.find((e) => e.search?.mode === 'outcome')?.resource as { issue: { diagnostics: string }[] };
  expect(outcome.issue.map((i) => i.diagnostics).join(' ')).toMatch(/frobnicate.*_count|_count.*frobnicate/s);
  const strict = await fhirRequest('GET', `${base}?frobnicate=1`, { headers: { Prefer: 'handling=strict' } });
  expect(strict.status).toBe(400);
});

test('_elements and _summary apply to every entry, as on a search: the elements named (and the mandatory ones), marked SUBSETTED; _summary=count is a 400', async () => {
  const patient = await create({ resourceType: 'Patient', name: [{ family: 'Subset' }], gender: 'female', text: { status: 'generated', div: '<div xmlns="http://www.w3.org/1999/xhtml">x</div>' } });
  await create(observation(patient, { valueString: 'kept out', effectiveDateTime: '2021-01-01' }));
  const base = `${server.base}/Patient/${patient.id}/$everything`;
  const subset = await fhirRequest<Bundle>('GET', `${base}?_elements=subject,gender`);
  expect(subset.status).toBe(200);
  const entries = (subset.body.entry ?? []).filter((e) => e.search?.mode !== 'outcome').map((e) => e.resource as Record<string, any>);
  const obs = entries.find((r) => r.resourceType === 'Observation') as Record<string, any>;
  // Observation's mandatory status and code stay; subject was asked for; the value was not.
  expect(Object.keys(obs).sort()).toEqual(['code', 'id', 'meta', 'resourceType', 'status', 'subject']);
  const pat = entries.find((r) => r.resourceType === 'Patient') as Record<string, any>;
  expect(Object.keys(pat).sort()).toEqual(['gender', 'id', 'meta', 'resourceType']);
  for (const r of entries) expect(r.meta.tag).toEqual(expect.arrayContaining([expect.objectContaining({ code: 'SUBSETTED' })]));
  // The links keep asking for the same subset.
  expect(new URL(subset.body.link?.find((l) => l.relation === 'self')?.url as string).searchParams.get('_elements')).toBe('subject,gender');
  const data = await fhirRequest<Bundle>('GET', `${base}?_summary=data`);
  expect((data.body.entry ?? []).map((e) => e.resource as Record<string, any>).find((r) => r.resourceType === 'Patient')).not.toHaveProperty('text');
  expect((await fhirRequest('GET', `${base}?_summary=count`)).status).toBe(400);
});

test('the CapabilityStatement lists Patient\'s everything with its official definition, on Patient and Encounter only', async () => {
  const res = await fhirRequest<CapabilityStatement>('GET', `${server.base}/metadata`);
  const resources = res.body.rest?.[0].resource ?? [];
  const operations = (type: string): string[] => (resources.find((r) => r.type === type)?.operation ?? []).map((o) => `${o.name} ${o.definition}`).sort();
  expect(operations('Patient')).toEqual(
    expect.arrayContaining([
      'everything http://hl7.org/fhir/OperationDefinition/Patient-everything',
      'validate http://hl7.org/fhir/OperationDefinition/Resource-validate',
    ])
  );
  expect(operations('Observation')).not.toContainEqual(expect.stringMatching(/^everything /));
  // Patient's and Encounter's (encounter-everything.test.ts), each with its own definition.
  expect(resources.filter((r) => r.operation?.some((o) => o.name === 'everything')).map((r) => r.type)).toEqual(['Encounter', 'Patient']);
});
