import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import type { SearchParameter } from '@medplum/fhirtypes';
import fhirpath from 'fhirpath';
import r4Model from 'fhirpath/fhir-context/r4';
import { freePort } from '../../server/core/free-port';
import { fhirRequest } from '../support/fhir-client';
import { INVALID_HL7_EXAMPLES, hl7ExampleFiles, readHl7Example } from '../support/hl7-examples';
import { startTestServer, type TestServer } from '../support/test-server';
import { startArguments } from '../../scripts/start-command';

const ROOT = path.join(__dirname, '../..');
/** Short, so that reindex jobs (which wait 2 × this + 1 s for every process to notice) finish quickly. */
const REFRESH_MS = '200';

let server: TestServer;
const fixtures: Record<string, any[]> = { Patient: [], Observation: [] };

beforeAll(async () => {
  server = await startTestServer({ SEARCH_PARAMETER_REFRESH_MS: REFRESH_MS, REINDEX_BATCH_SIZE: '7' });
  // Existing rows before any parameter is defined: the reindex must reach them.
  for (const file of hl7ExampleFiles()) {
    const type = file.split('-')[0];
    if (!(type in fixtures) || file in INVALID_HL7_EXAMPLES) continue;
    const example = readHl7Example(file);
    const res = await fhirRequest('PUT', `${server.base}/${type}/${example.id}`, { body: example });
    expect(res.status).toBe(201);
    fixtures[type].push(example);
  }
});

afterAll(async () => {
  await server?.stop();
});

function searchParameter(id: string, code: string, base: string, type: SearchParameter['type'], expression: string): SearchParameter {
  return {
    resourceType: 'SearchParameter',
    id,
    url: `http://example.org/fhir/SearchParameter/${id}`,
    name: id,
    status: 'active',
    description: `Test parameter ${code}`,
    code,
    base: [base] as SearchParameter['base'],
    type,
    expression,
  };
}

/** The values the expression selects, by the fhirpath package (not the server's engine). */
function evaluate(resource: unknown, expression: string): any[] {
  return fhirpath.evaluate(resource as object, expression, undefined, r4Model) as any[];
}

async function searchIds(base: string, query: string): Promise<{ ids: string[]; warnings: string[] }> {
  const res = await fhirRequest('GET', `${base}/${query}${query.includes('?') ? '&' : '?'}_count=1000`);
  expect(res.status).toBe(200);
  const entries: any[] = res.body.entry ?? [];
  const ids = entries.filter((e) => e.search?.mode === 'match').map((e) => e.resource.id).sort();
  const warnings = entries
    .filter((e) => e.search?.mode === 'outcome')
    .flatMap((e) => e.resource.issue.map((i: any) => `${i.code}: ${i.diagnostics}`));
  return { ids, warnings };
}

async function define(sp: SearchParameter): Promise<string> {
  const res = await fhirRequest('PUT', `${server.base}/SearchParameter/${sp.id}`, { body: sp });
  expect({ status: res.status, body: res.status >= 400 ? res.body : undefined }).toEqual({ status: res.status === 200 ? 200 : 201, body: undefined });
  const link = res.headers.get('link') ?? '';
  const task = /<[^>]*\/(Task\/[^>]+)>; rel="monitor"/.exec(link)?.[1];
  expect(task).toBeDefined();
  return task as string;
}

async function waitForTask(task: string): Promise<any> {
  for (let i = 0; i < 300; i++) {
    const res = await fhirRequest('GET', `${server.base}/${task}`);
    expect(res.status).toBe(200);
    if (res.body.status === 'completed') return res.body;
    expect(['requested', 'in-progress']).toContain(res.body.status);
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${task} did not complete`);
}

async function capabilityParams(base: string, type: string): Promise<{ name: string; type: string; definition?: string }[]> {
  const res = await fhirRequest('GET', `${base}/metadata`);
  return res.body.rest[0].resource.find((r: any) => r.type === type).searchParam;
}

describe('a SearchParameter resource makes its parameter searchable, existing data included', () => {
  test('a token on Patient.maritalStatus: the reindex Task reports progress, then search matches what FHIRPath selects', async () => {
    const task = await define(searchParameter('marital', 'marital', 'Patient', 'token', 'Patient.maritalStatus'));

    // Until the reindex completes, a search with it says that results may be incomplete.
    const early = await searchIds(server.base, 'Patient?marital=M');
    expect(early.warnings.join('\n')).toContain(task);

    const done = await waitForTask(task);
    const output = Object.fromEntries(done.output.map((o: any) => [`${o.type.text} ${o.type.coding[0].code}`, o.valueInteger]));
    expect(output).toEqual({ 'Patient indexed': fixtures.Patient.length, 'Patient total': fixtures.Patient.length });
    expect(done.focus.reference).toBe('SearchParameter/marital');

    for (const [query, system, code] of [
      ['M', undefined, 'M'],
      ['http://snomed.info/sct|36629006', 'http://snomed.info/sct', '36629006'],
      ['http://terminology.hl7.org/CodeSystem/v3-MaritalStatus|M', 'http://terminology.hl7.org/CodeSystem/v3-MaritalStatus', 'M'],
    ] as const) {
      const expected = fixtures.Patient.filter((p) =>
        evaluate(p, 'Patient.maritalStatus.coding').some((c) => c.code === code && (system === undefined || c.system === system))
      ).map((p) => p.id).sort();
      expect(expected.length).toBeGreaterThan(0);
      const found = await searchIds(server.base, `Patient?marital=${encodeURIComponent(query)}`);
      expect(found).toEqual({ ids: expected, warnings: [] });
    }
    const missing = fixtures.Patient.filter((p) => evaluate(p, 'Patient.maritalStatus').length === 0).map((p) => p.id).sort();
    expect(await searchIds(server.base, 'Patient?marital:missing=true')).toEqual({ ids: missing, warnings: [] });
  });

  test('a string on Patient.address.city and a date on Patient.birthDate match what FHIRPath selects', async () => {
    const cityTask = await define(searchParameter('city', 'city', 'Patient', 'string', 'Patient.address.city'));
    const bornTask = await define(searchParameter('born', 'born', 'Patient', 'date', 'Patient.birthDate'));
    await waitForTask(cityTask);
    await waitForTask(bornTask);

    const byCity = fixtures.Patient.filter((p) => evaluate(p, 'Patient.address.city').some((c: string) => c.toLowerCase().startsWith('amst')));
    expect(byCity.length).toBeGreaterThan(0);
    expect(await searchIds(server.base, 'Patient?city=amst')).toEqual({ ids: byCity.map((p) => p.id).sort(), warnings: [] });

    const before1980 = fixtures.Patient.filter((p) => evaluate(p, 'Patient.birthDate').some((d: string) => Number(d.slice(0, 4)) < 1980));
    expect(before1980.length).toBeGreaterThan(0);
    expect(await searchIds(server.base, 'Patient?born=lt1980')).toEqual({ ids: before1980.map((p) => p.id).sort(), warnings: [] });
  });

  test('a reference on Observation.performer matches what FHIRPath selects', async () => {
    await waitForTask(await define(searchParameter('performed-by', 'performed-by', 'Observation', 'reference', 'Observation.performer')));
    const expected = fixtures.Observation.filter((o) =>
      evaluate(o, 'Observation.performer.reference').includes('Practitioner/example')
    ).map((o) => o.id).sort();
    expect(expected.length).toBeGreaterThan(0);
    expect(await searchIds(server.base, 'Observation?performed-by=Practitioner/example')).toEqual({ ids: expected, warnings: [] });
  });

  test('a resource written after the parameter exists is indexed in the same write', async () => {
    await define(searchParameter('marital', 'marital', 'Patient', 'token', 'Patient.maritalStatus')).then(waitForTask);
    const patient = { resourceType: 'Patient', maritalStatus: { coding: [{ system: 'http://example.org/ms', code: 'fresh' }] } };
    const created = await fhirRequest('POST', `${server.base}/Patient`, { body: patient });
    expect(created.status).toBe(201);
    expect(await searchIds(server.base, 'Patient?marital=http://example.org/ms|fresh')).toEqual({ ids: [created.body.id], warnings: [] });
    const updated = await fhirRequest('PUT', `${server.base}/Patient/${created.body.id}`, {
      body: { ...created.body, maritalStatus: { coding: [{ system: 'http://example.org/ms', code: 'changed' }] } },
    });
    expect(updated.status).toBe(200);
    expect((await searchIds(server.base, 'Patient?marital=http://example.org/ms|fresh')).ids).toEqual([]);
    expect((await searchIds(server.base, 'Patient?marital=changed')).ids).toEqual([created.body.id]);
  });

  test('the CapabilityStatement lists a custom parameter on its base, with its url and type', async () => {
    await define(searchParameter('city', 'city', 'Patient', 'string', 'Patient.address.city')).then(waitForTask);
    expect(await capabilityParams(server.base, 'Patient')).toEqual(
      expect.arrayContaining([{ name: 'city', type: 'string', definition: 'http://example.org/fhir/SearchParameter/city', documentation: 'Test parameter city' }])
    );
    expect((await capabilityParams(server.base, 'Observation')).map((p) => p.name)).not.toContain('city');
  });
});

describe('definitions that cannot be applied are refused with an OperationOutcome', () => {
  test.each([
    ['an expression that does not parse', searchParameter('bad-syntax', 'bad-syntax', 'Patient', 'token', 'Patient.name.where('), 400, 'not valid FHIRPath'],
    ['an official code on the same base, defined otherwise', searchParameter('my-gender', 'gender', 'Patient', 'token', 'Patient.maritalStatus'), 422, 'official search parameter'],
    ['a code that would share an official column (case-folded)', searchParameter('gender2', 'Gender', 'Patient', 'token', 'Patient.gender'), 422, 'index column'],
    ['an expression that selects nothing from its base', searchParameter('elsewhere', 'elsewhere', 'Patient', 'token', 'Observation.code'), 422, 'selects nothing'],
    [
      'a type without a handler for custom parameters',
      {
        ...searchParameter('combo', 'combo', 'Patient', 'composite', 'Patient'),
        component: [
          { definition: 'http://hl7.org/fhir/SearchParameter/individual-gender', expression: 'gender' },
          { definition: 'http://hl7.org/fhir/SearchParameter/individual-birthdate', expression: 'birthDate' },
        ],
      },
      422,
      'cannot be defined',
    ],
    // HL7's validator rules (validation/search-parameter-rules.ts): a composite of fewer than two, a derivation that changes the type.
    ['a composite of one component', { ...searchParameter('combo1', 'combo1', 'Patient', 'composite', 'Patient'), component: [{ definition: 'http://hl7.org/fhir/SearchParameter/individual-gender', expression: 'gender' }] }, 400, 'two or more components'],
    ['a derivation of another type', { ...searchParameter('given2', 'given2', 'Patient', 'string', 'Patient.gender'), derivedFrom: 'http://hl7.org/fhir/SearchParameter/individual-gender' }, 400, 'derivedFrom'],
    ['a derivation onto a base its parent lacks', { ...searchParameter('gender3', 'gender3', 'Device', 'token', 'Device.status'), derivedFrom: 'http://hl7.org/fhir/SearchParameter/individual-gender' }, 400, 'not listed as a base'],
    ['a code reserved by the spec', searchParameter('underscore', '_mine', 'Patient', 'token', 'Patient.gender'), 400, 'SearchParameter.code'],
  ])('%s', async (_what, sp, status, message) => {
    const res = await fhirRequest('POST', `${server.base}/SearchParameter`, { body: sp });
    expect(res.status).toBe(status);
    expect(res.body.resourceType).toBe('OperationOutcome');
    expect(res.body.issue[0].diagnostics).toContain(message);
    expect((await capabilityParams(server.base, 'Patient')).map((p) => p.definition)).not.toContain(sp.url);
  });

  test('a second parameter with the same code on the same base is refused; a retired one is stored and does nothing', async () => {
    await define(searchParameter('city', 'city', 'Patient', 'string', 'Patient.address.city')).then(waitForTask);
    const twin = await fhirRequest('POST', `${server.base}/SearchParameter`, {
      body: searchParameter('city-twin', 'city', 'Patient', 'string', 'Patient.address.city'),
    });
    expect(twin.status).toBe(422);
    const retired = await fhirRequest('POST', `${server.base}/SearchParameter`, {
      body: { ...searchParameter('bad-retired', 'gender', 'Patient', 'token', 'Patient.gender'), status: 'retired' },
    });
    expect(retired.status).toBe(201);
    expect(retired.headers.get('link')).toBeNull();
  });
});

describe('definitions that are stored without effect', () => {
  test('a draft that cannot be applied is stored like any valid resource and changes no search', async () => {
    const sp = { ...searchParameter('draft-clash', 'gender', 'Patient', 'token', 'Patient.maritalStatus'), status: 'draft' };
    const res = await fhirRequest('POST', `${server.base}/SearchParameter`, { body: sp });
    expect(res.status).toBe(201);
    expect(res.headers.get('link')).toBeNull();
    const params = await capabilityParams(server.base, 'Patient');
    expect(params.filter((p) => p.name === 'gender').map((p) => p.definition)).toEqual(['http://hl7.org/fhir/SearchParameter/individual-gender']);
  });

  test('a definition that restates an official or built-in parameter is accepted and the official one stays', async () => {
    for (const sp of [
      searchParameter('restated-subject', 'subject', 'Condition', 'reference', 'Condition.subject'),
      { ...searchParameter('restated-id', '_id', 'Resource', 'token', 'id'), status: 'active' },
    ]) {
      const res = await fhirRequest('POST', `${server.base}/SearchParameter`, { body: sp });
      expect({ status: res.status, body: res.status >= 300 ? res.body : undefined }).toEqual({ status: 201, body: undefined });
      expect(res.headers.get('link')).toBeNull();
    }
    const condition = await capabilityParams(server.base, 'Condition');
    expect(condition.filter((p) => p.name === 'subject').map((p) => p.definition)).toEqual(['http://hl7.org/fhir/SearchParameter/Condition-subject']);
  });
});

describe('retiring or deleting a SearchParameter removes its parameter', () => {
  test('retired: gone from the CapabilityStatement and refused in strict searches', async () => {
    const sp = searchParameter('retire-me', 'retire-me', 'Patient', 'token', 'Patient.gender');
    await define(sp).then(waitForTask);
    expect((await capabilityParams(server.base, 'Patient')).map((p) => p.name)).toContain('retire-me');
    const retired = await fhirRequest('PUT', `${server.base}/SearchParameter/${sp.id}`, { body: { ...sp, status: 'retired' } });
    expect(retired.status).toBe(200);
    expect((await capabilityParams(server.base, 'Patient')).map((p) => p.name)).not.toContain('retire-me');
    const strict = await fhirRequest('GET', `${server.base}/Patient?retire-me=male`, { headers: { Prefer: 'handling=strict' } });
    expect(strict.status).toBe(400);
  });

  test('deleted: gone, and defining it again (with another type) works on the same data', async () => {
    const sp = searchParameter('delete-me', 'delete-me', 'Patient', 'token', 'Patient.gender');
    await define(sp).then(waitForTask);
    expect((await fhirRequest('DELETE', `${server.base}/SearchParameter/${sp.id}`)).status).toBe(204);
    expect((await capabilityParams(server.base, 'Patient')).map((p) => p.name)).not.toContain('delete-me');
    const strict = await fhirRequest('GET', `${server.base}/Patient?delete-me=male`, { headers: { Prefer: 'handling=strict' } });
    expect(strict.status).toBe(400);

    await define({ ...sp, type: 'string' }).then(waitForTask);
    const expected = fixtures.Patient.filter((p) => evaluate(p, 'Patient.gender').some((g: string) => g.startsWith('fem')));
    expect(await searchIds(server.base, 'Patient?delete-me=fem')).toEqual({ ids: expected.map((p) => p.id).sort(), warnings: [] });
  });
});

describe('a second server process on the same database', () => {
  let child: ChildProcess | undefined;
  afterAll(() => {
    child?.kill('SIGKILL');
  });

  test('learns of a parameter defined through the first one, and indexes its own writes with it', async () => {
    const port = await freePort();
    child = spawn(process.execPath, startArguments(), {
      cwd: ROOT,
      env: { ...process.env, PORT: String(port), DATABASE_URL: server.databaseUrl, LOG_LEVEL: 'warn', AUTH_REQUIRED: 'false', SEARCH_PARAMETER_REFRESH_MS: REFRESH_MS },
      stdio: 'ignore',
    });
    const second = `http://127.0.0.1:${port}/fhir`;
    for (let i = 0; i < 300; i++) {
      if (await fetch(`${second}/metadata`).then((r) => r.status === 200, () => false)) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    const task = await define(searchParameter('nickname', 'nickname', 'Patient', 'string', "Patient.name.where(use = 'nickname').given"));
    let listed = false;
    for (let i = 0; i < 100 && !listed; i++) {
      listed = (await capabilityParams(second, 'Patient')).some((p) => p.name === 'nickname');
      if (!listed) await new Promise((r) => setTimeout(r, 50));
    }
    expect(listed).toBe(true);
    const patient = { resourceType: 'Patient', name: [{ use: 'nickname', given: ['Zebedee'] }] };
    const created = await fhirRequest('POST', `${second}/Patient`, { body: patient });
    expect(created.status).toBe(201);
    await waitForTask(task);
    const expected = [...fixtures.Patient, created.body]
      .filter((p) => evaluate(p, "Patient.name.where(use = 'nickname').given").some((g: string) => g.toLowerCase().startsWith('zeb')))
      .map((p) => p.id)
      .sort();
    expect(expected).toContain(created.body.id);
    // Either process may have run the reindex; the other learns that it completed within its refresh interval.
    for (const base of [server.base, second]) {
      let found = await searchIds(base, 'Patient?nickname=zeb');
      for (let i = 0; i < 100 && found.warnings.length > 0; i++) {
        await new Promise((r) => setTimeout(r, 50));
        found = await searchIds(base, 'Patient?nickname=zeb');
      }
      expect(found).toEqual({ ids: expected, warnings: [] });
    }
  });
});
