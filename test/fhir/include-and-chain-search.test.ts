import type { Resource } from '@medplum/fhirtypes';
import { loadSynthea } from '../search/search-fixtures';
import { fhirRequest } from '../support/fhir-client';
import { startTestServer, type TestServer } from '../support/test-server';

/**
 * _include / _revinclude, chains and _has over HTTP, against two Synthea patients loaded
 * through the API. Expected results are worked out here from the loaded JSON: references
 * are read from the resources' own fields, not from the server's index.
 */
const TYPES = ['Patient', 'Practitioner', 'Organization', 'Location', 'Encounter', 'Observation', 'Condition', 'Procedure', 'Provenance'];

let server: TestServer;
let stored: Map<string, Resource>;

const key = (r: { resourceType?: string; id?: string }): string => `${r.resourceType}/${r.id}`;
const ofType = (type: string): Resource[] => [...stored.values()].filter((r) => r.resourceType === type);
const ref = (r: Resource, field: string): string | undefined => ((r as unknown as Record<string, { reference?: string }>)[field])?.reference;

/** Every `Type/id` reference anywhere inside a resource that points to a stored resource. */
function allLocalReferences(resource: Resource): string[] {
  const out = new Set<string>();
  const walk = (v: unknown): void => {
    if (Array.isArray(v)) v.forEach(walk);
    else if (v && typeof v === 'object') {
      for (const [k, x] of Object.entries(v)) {
        if (k === 'reference' && typeof x === 'string' && stored.has(x)) out.add(x);
        else walk(x);
      }
    }
  };
  walk(resource);
  return [...out];
}

interface Page {
  status: number;
  matches: string[];
  includes: string[];
  outcomes: Resource[];
  total?: number;
  next?: string;
  all: string[];
}

async function get(url: string, headers: Record<string, string> = {}): Promise<Page> {
  const res = await fhirRequest('GET', url.startsWith('http') ? url : `${server.base}/${url}`, { headers });
  const entries: { search?: { mode?: string }; resource: Resource }[] = res.body?.entry ?? [];
  const of = (mode: string): Resource[] => entries.filter((e) => e.search?.mode === mode).map((e) => e.resource);
  return {
    status: res.status,
    matches: of('match').map(key),
    includes: of('include').map(key),
    outcomes: of('outcome'),
    total: res.body?.total,
    next: res.body?.link?.find((l: { relation: string }) => l.relation === 'next')?.url,
    all: entries.filter((e) => e.search?.mode !== 'outcome').map((e) => key(e.resource)),
  };
}

async function allPages(url: string): Promise<Page[]> {
  const pages: Page[] = [];
  for (let next: string | undefined = url; next; next = pages[pages.length - 1].next) {
    const page = await get(next);
    expect(page.status).toBe(200);
    pages.push(page);
  }
  return pages;
}

const sorted = (xs: Iterable<string>): string[] => [...xs].sort();

beforeAll(async () => {
  server = await startTestServer();
  const resources = loadSynthea(TYPES, 2);
  stored = new Map();
  for (let i = 0; i < resources.length; i += 16) {
    await Promise.all(
      resources.slice(i, i + 16).map(async (r) => {
        const res = await fhirRequest('PUT', `${server.base}/${key(r)}`, { body: r });
        if (res.status === 201 || res.status === 200) stored.set(key(r), r);
      })
    );
  }
  expect(stored.size).toBeGreaterThan(resources.length * 0.95);
});

afterAll(async () => {
  await server?.stop();
});

describe('_include and _revinclude', () => {
  test('_include adds, per page, exactly the resources that page’s matches refer to, once each, without changing total or paging', async () => {
    const patient = ofType('Patient')[0];
    const observations = ofType('Observation').filter((o) => ref(o, 'subject') === key(patient));
    expect(observations.length).toBeGreaterThan(14);
    const plain = await allPages(`Observation?patient=${patient.id}&_count=7&_total=accurate`);
    const pages = await allPages(`Observation?patient=${patient.id}&_count=7&_total=accurate&_include=Observation:encounter&_include=Observation:patient`);
    expect(pages.map((p) => p.matches)).toEqual(plain.map((p) => p.matches));
    expect(pages.map((p) => p.total)).toEqual(plain.map(() => observations.length));
    expect(sorted(pages.flatMap((p) => p.matches))).toEqual(sorted(observations.map(key)));
    for (const page of pages) {
      const matched = page.matches.map((k) => stored.get(k) as Resource);
      const expected = new Set(matched.flatMap((o) => [ref(o, 'encounter'), ref(o, 'subject')]).filter((r): r is string => r !== undefined && stored.has(r)));
      expect(sorted(page.includes)).toEqual(sorted(expected));
      expect(new Set(page.all).size).toBe(page.all.length);
    }
    expect(pages.every((p) => p.includes.includes(key(patient)))).toBe(true);
  });

  test('_revinclude adds, per page, the resources that refer to that page’s matches and no others', async () => {
    const patient = ofType('Patient')[1];
    const encounters = ofType('Encounter').filter((e) => ref(e, 'subject') === key(patient));
    const pages = await allPages(`Encounter?patient=${patient.id}&_count=5&_revinclude=Observation:encounter&_revinclude=Condition:encounter`);
    expect(sorted(pages.flatMap((p) => p.matches))).toEqual(sorted(encounters.map(key)));
    let included = 0;
    for (const page of pages) {
      const onPage = new Set(page.matches);
      const expected = [...ofType('Observation'), ...ofType('Condition')].filter((r) => onPage.has(ref(r, 'encounter') ?? ''));
      expect(sorted(page.includes)).toEqual(sorted(expected.map(key)));
      included += page.includes.length;
    }
    expect(included).toBeGreaterThan(0);
  });

  test(':iterate (and R4’s :recurse) follows references out of included resources', async () => {
    const observation = ofType('Observation').find((o) => {
      const encounter = stored.get(ref(o, 'encounter') ?? '');
      return encounter && stored.has(ref(encounter, 'serviceProvider') ?? '');
    }) as Resource;
    const encounter = stored.get(ref(observation, 'encounter') as string) as Resource;
    const expected = sorted([key(encounter), ref(encounter, 'serviceProvider') as string]);
    for (const modifier of ['iterate', 'recurse']) {
      const page = await get(`Observation?_id=${observation.id}&_include=Observation:encounter&_include:${modifier}=Encounter:service-provider`);
      expect(page.matches).toEqual([key(observation)]);
      expect(sorted(page.includes)).toEqual(expected);
    }
    // Without :iterate an _include from another type can include nothing: a warning, or a 400 when strict.
    const lenient = await get(`Observation?_id=${observation.id}&_include=Encounter:service-provider`);
    expect(lenient.includes).toEqual([]);
    expect(JSON.stringify(lenient.outcomes)).toContain('Encounter:service-provider');
    expect((await get(`Observation?_id=${observation.id}&_include=Encounter:service-provider`, { Prefer: 'handling=strict' })).status).toBe(400);
  });

  test('a resource that is a match is never repeated as an include, even when an :iterate leads back to it', async () => {
    const patient = ofType('Patient')[0];
    const encounters = ofType('Encounter').filter((e) => ref(e, 'subject') === key(patient));
    const page = await get(`Patient?_id=${patient.id}&_revinclude=Encounter:patient&_include:iterate=Encounter:patient&_include:iterate=Encounter:service-provider`);
    expect(page.matches).toEqual([key(patient)]);
    const providers = new Set(encounters.map((e) => ref(e, 'serviceProvider')).filter((r): r is string => r !== undefined && stored.has(r)));
    expect(sorted(page.includes)).toEqual(sorted([...encounters.map(key), ...providers]));
    expect(new Set(page.all).size).toBe(page.all.length);
  });

  test('_include=* and Observation:* follow every reference parameter; Type:param:Target only references to Target', async () => {
    const observation = ofType('Observation').find((o) => allLocalReferences(o).length > 1) as Resource;
    for (const value of ['*', 'Observation:*']) {
      const page = await get(`Observation?_id=${observation.id}&_include=${encodeURIComponent(value)}`);
      expect({ value, includes: sorted(page.includes) }).toEqual({ value, includes: sorted(allLocalReferences(observation)) });
    }
    expect((await get(`Observation?_id=${observation.id}&_include=Observation:subject:Patient`)).includes).toEqual([ref(observation, 'subject')]);
    expect((await get(`Observation?_id=${observation.id}&_include=Observation:subject:Group`)).includes).toEqual([]);
  });

  test('_revinclude=Provenance:target includes the Provenance of the matches', async () => {
    const patient = ofType('Patient')[0];
    const provenance = ofType('Provenance').filter((p) => ((p as { target?: { reference?: string }[] }).target ?? []).some((t) => t.reference === key(patient)));
    expect(provenance.length).toBeGreaterThan(0);
    const page = await get(`Patient?_id=${patient.id}&_revinclude=Provenance:target`);
    expect(sorted(page.includes)).toEqual(sorted(provenance.map(key)));
  });

  test('_revinclude=* includes every stored resource that refers to a match, through any reference parameter', async () => {
    const encounter = ofType('Encounter').find((e) => [...stored.values()].filter((r) => allLocalReferences(r).includes(key(e))).length > 1) as Resource;
    // Worked out from the JSON: every resource with a reference to the Encounter (the loaded types' reference parameters cover these fields).
    const referring = [...stored.values()].filter((r) => r !== encounter && allLocalReferences(r).includes(key(encounter))).map(key);
    expect(referring.length).toBeGreaterThan(1);
    const page = await get(`Encounter?_id=${encounter.id}&_revinclude=*`, { Prefer: 'handling=strict' });
    expect(page.status).toBe(200);
    expect(page.matches).toEqual([key(encounter)]);
    // The server's own AuditEvents of the Encounter's writes refer to it too (entity); the rest is the fixtures'.
    expect(sorted(page.includes.filter((k) => !k.startsWith('AuditEvent/')))).toEqual(sorted(referring));
    expect(page.includes.some((k) => k.startsWith('AuditEvent/'))).toBe(true);
  });

  test('malformed _include values are a 400; unknown parameters a warning, or a 400 when strict', async () => {
    for (const bad of ['_include=Observation', '_include=NotAType:subject', '_include=Observation:code', '_include:deep=Observation:subject', '_include=Observation:subject:NotAType']) {
      const res = await fhirRequest('GET', `${server.base}/Observation?${bad}`);
      expect({ bad, status: res.status, type: res.body?.resourceType }).toEqual({ bad, status: 400, type: 'OperationOutcome' });
    }
    const lenient = await get('Observation?_include=Observation:nonsense&_count=1');
    expect(lenient.status).toBe(200);
    expect(JSON.stringify(lenient.outcomes)).toContain('nonsense');
    expect((await get('Observation?_include=Observation:nonsense', { Prefer: 'handling=strict' })).status).toBe(400);
  });

  test('_summary=count ignores includes; _summary=true applies to included resources too', async () => {
    const patient = ofType('Patient')[0];
    const count = await fhirRequest('GET', `${server.base}/Observation?patient=${patient.id}&_include=Observation:patient&_summary=count`);
    expect(count.body.entry ?? []).toEqual([]);
    expect(count.body.total).toBe(ofType('Observation').filter((o) => ref(o, 'subject') === key(patient)).length);
    const summary = await fhirRequest('GET', `${server.base}/Observation?patient=${patient.id}&_count=1&_include=Observation:patient&_summary=true`);
    const included = summary.body.entry.find((e: { search: { mode: string } }) => e.search.mode === 'include').resource;
    expect(included.meta.tag).toEqual(expect.arrayContaining([expect.objectContaining({ code: 'SUBSETTED' })]));
  });
});

describe('chains and _has over HTTP', () => {
  test('Observation?subject:Patient.name= matches the Observations of the Patients with that name, with an accurate total', async () => {
    const patient = ofType('Patient')[1] as Resource & { name: { given: string[] }[] };
    const given = patient.name[0].given[0];
    const named = new Set(
      ofType('Patient')
        .filter((p) => ((p as typeof patient).name ?? []).some((n) => (n.given ?? []).some((g) => g.toLowerCase().startsWith(given.toLowerCase()))))
        .map(key)
    );
    const expected = ofType('Observation').filter((o) => named.has(ref(o, 'subject') ?? ''));
    const pages = await allPages(`Observation?subject:Patient.given=${encodeURIComponent(given)}&_total=accurate&_count=200`);
    expect(pages[0].total).toBe(expected.length);
    expect(sorted(pages.flatMap((p) => p.matches))).toEqual(sorted(expected.map(key)));
  });

  test('Patient?_has:Observation:patient:code= matches the Patients that have such an Observation', async () => {
    const observation = ofType('Observation')[0] as Resource & { code: { coding: { system: string; code: string }[] } };
    const { system, code } = observation.code.coding[0];
    const expected = new Set(
      ofType('Observation')
        .filter((o) => (o as typeof observation).code.coding.some((c) => c.system === system && c.code === code))
        .map((o) => ref(o, 'subject'))
        .filter((r): r is string => r !== undefined && stored.has(r))
    );
    const page = await get(`Patient?_has:Observation:patient:code=${encodeURIComponent(`${system}|${code}`)}`);
    expect(sorted(page.matches)).toEqual(sorted(expected));
  });

  test('a chain through a reference with several target types and no type modifier searches each type that has the parameter', async () => {
    const post = async (resource: Record<string, unknown>): Promise<string> => (await fhirRequest('POST', `${server.base}/${resource.resourceType}`, { body: resource })).body.id;
    // A Patient and a Location share a name; Observation.subject can point to either.
    const patient = await post({ resourceType: 'Patient', name: [{ family: 'Chainville' }] });
    const location = await post({ resourceType: 'Location', name: 'Chainville Clinic' });
    const observation = (subject: string): Record<string, unknown> => ({ resourceType: 'Observation', status: 'final', code: { text: 'chain' }, subject: { reference: subject } });
    const aboutPatient = await post(observation(`Patient/${patient}`));
    const aboutLocation = await post(observation(`Location/${location}`));
    const matches = async (query: string): Promise<string[]> => (await get(`${server.base}/Observation?${query}`, { Prefer: 'handling=strict' })).matches.sort();
    expect(await matches('subject.name=Chainville')).toEqual([`Observation/${aboutPatient}`, `Observation/${aboutLocation}`].sort());
    expect(await matches('subject:Patient.name=Chainville')).toEqual([`Observation/${aboutPatient}`]);
    expect(await matches('subject:Location.name=Chainville')).toEqual([`Observation/${aboutLocation}`]);
    // No target type of subject has this parameter: strict handling says so.
    const unknown = await fhirRequest('GET', `${server.base}/Observation?subject.nonsense=x`, { headers: { Prefer: 'handling=strict' } });
    expect(unknown.status).toBe(400);
    expect(unknown.body.resourceType).toBe('OperationOutcome');
  });
});

describe('the CapabilityStatement', () => {
  test('lists searchInclude and searchRevInclude per type, and each listed value works in strict mode', async () => {
    const cs = (await fhirRequest('GET', `${server.base}/metadata`)).body;
    const byType = (type: string): { searchInclude: string[]; searchRevInclude: string[] } => cs.rest[0].resource.find((r: { type: string }) => r.type === type);
    expect(byType('Observation').searchInclude).toEqual(expect.arrayContaining(['*', 'Observation:*', 'Observation:subject', 'Observation:encounter']));
    expect(byType('Patient').searchRevInclude).toEqual(expect.arrayContaining(['Observation:subject', 'Observation:patient', 'Provenance:target', 'Encounter:patient']));
    expect(byType('Patient').searchRevInclude).not.toContain('Observation:code');
    expect(byType('Patient').searchRevInclude[0]).toBe('*');
    for (const type of ['Patient', 'Encounter']) {
      for (const [name, values] of [['_include', byType(type).searchInclude], ['_revinclude', byType(type).searchRevInclude.slice(0, 25)]] as const) {
        for (const value of values) {
          const res = await fhirRequest('GET', `${server.base}/${type}?_count=1&${name}=${encodeURIComponent(value)}`, { headers: { Prefer: 'handling=strict' } });
          expect({ name, value, status: res.status }).toEqual({ name, value, status: 200 });
        }
      }
    }
  });
});

describe('more included resources than the server includes per page', () => {
  let small: TestServer;
  beforeAll(async () => {
    small = await startTestServer({ SEARCH_MAX_COUNT: '3' });
  });
  afterAll(async () => {
    await small?.stop();
  });

  test('are cut at SEARCH_MAX_COUNT with a warning OperationOutcome in the bundle, never silently', async () => {
    await fhirRequest('PUT', `${small.base}/Patient/p`, { body: { resourceType: 'Patient', id: 'p' } });
    for (const id of ['o1', 'o2', 'o3', 'o4', 'o5']) {
      const body = { resourceType: 'Observation', id, status: 'final', code: { text: 'x' }, subject: { reference: 'Patient/p' } };
      expect((await fhirRequest('PUT', `${small.base}/Observation/${id}`, { body })).status).toBe(201);
    }
    const res = await fhirRequest('GET', `${small.base}/Patient?_id=p&_revinclude=Observation:subject`);
    const modes = res.body.entry.map((e: { search: { mode: string } }) => e.search.mode);
    expect(modes).toEqual(['match', 'include', 'include', 'include', 'outcome']);
    const outcome = res.body.entry[4].resource;
    expect(outcome.issue[0]).toMatchObject({ severity: 'warning', code: 'too-costly' });
    const all = await fhirRequest('GET', `${small.base}/Patient?_id=p&_revinclude=Observation:subject:Patient`);
    expect(all.body.entry.filter((e: { search: { mode: string } }) => e.search.mode === 'include')).toHaveLength(3);
  });
});
