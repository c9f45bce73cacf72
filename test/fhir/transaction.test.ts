import { bundle, expectOutcomeNaming, jsonPatchBinary, MRN, patient, useBundleTestServer } from '../support/bundle-requests';
import { fhirRequest } from '../support/fhir-client';

/**
 * Transaction Bundles (https://hl7.org/fhir/R4/http.html#transaction) over HTTP, with
 * small hand-made Bundles; Synthea and HL7's own transaction are in
 * transaction-real-data.test.ts, parallel requests in transaction-concurrency.test.ts.
 */

const { server, post, create, read, countWithIdentifier, locationReference } = useBundleTestServer();

function transaction(entry: unknown[]): Record<string, unknown> {
  return bundle('transaction', entry);
}

describe('the transaction-response', () => {
  test('has one entry per request entry, in request order, with status, location, etag and lastModified as each interaction gives them', async () => {
    const toRead = await create(patient('resp-read'));
    const toDelete = await create(patient('resp-delete'));
    const toPatch = await create(patient('resp-patch'));
    const res = await post(
      transaction([
        { request: { method: 'GET', url: `Patient/${toRead.id}` } },
        { fullUrl: 'urn:uuid:0b5e2d3c-1c1f-4a6e-9d43-3f1b7d8a0001', resource: patient('resp-new'), request: { method: 'POST', url: 'Patient' } },
        { request: { method: 'DELETE', url: `Patient/${toDelete.id}` } },
        { resource: patient('resp-put', { id: 'resp-put' }), request: { method: 'PUT', url: 'Patient/resp-put' } },
        {
          resource: jsonPatchBinary([{ op: 'add', path: '/active', value: true }]),
          request: { method: 'PATCH', url: `Patient/${toPatch.id}` },
        },
      ])
    );
    expect(res.status).toBe(200);
    expect(res.body.resourceType).toBe('Bundle');
    expect(res.body.type).toBe('transaction-response');
    const [get, created, deleted, put, patched] = res.body.entry;
    expect(res.body.entry).toHaveLength(5);

    expect(get.response.status).toMatch(/^200/);
    expect(get.resource.id).toBe(toRead.id);
    expect(get.response.etag).toBe('W/"1"');
    expect(get.response.lastModified).toBe(toRead.meta.lastUpdated);

    for (const [written, version] of [
      [created, 1],
      [put, 1],
      [patched, 2],
    ] as const) {
      expect(written.response.etag).toBe(`W/"${version}"`);
      expect(written.response.location).toBe(`${server.base}/Patient/${written.resource.id}/_history/${version}`);
      expect(written.response.lastModified).toBe(written.resource.meta.lastUpdated);
      expect(written.fullUrl).toBe(`${server.base}/Patient/${written.resource.id}`);
      const back = await read(`Patient/${written.resource.id}`);
      expect(back.body).toEqual(written.resource);
    }
    expect(created.response.status).toMatch(/^201/);
    expect(created.resource.identifier[0].value).toBe('resp-new');
    expect(put.response.status).toMatch(/^201/);
    expect(put.resource.id).toBe('resp-put');
    expect(patched.response.status).toMatch(/^200/);
    expect(patched.resource.active).toBe(true);

    expect(deleted.response.status).toMatch(/^204/);
    expect(deleted.resource).toBeUndefined();
    expect((await read(`Patient/${toDelete.id}`)).status).toBe(410);
  });

  test('Prefer: return=minimal leaves the resources out, return=representation puts them in, return=OperationOutcome gives each write an outcome', async () => {
    const entries = (mrn: string) => [
      { resource: patient(mrn), request: { method: 'POST', url: 'Patient' } },
      { resource: patient(mrn, { id: mrn }), request: { method: 'PUT', url: `Patient/${mrn}` } },
    ];
    const minimal = await post(transaction(entries('prefer-min')), { Prefer: 'return=minimal' });
    expect(minimal.status).toBe(200);
    for (const entry of minimal.body.entry) {
      expect(entry.resource).toBeUndefined();
      expect(entry.response.status).toMatch(/^201/);
      expect(entry.response.location).toMatch(new RegExp(`^${server.base}/Patient/[^/]+/_history/1$`));
      expect(entry.response.etag).toBe('W/"1"');
      expect(entry.response.lastModified).toEqual(expect.any(String));
      expect((await fhirRequest('GET', entry.response.location)).status).toBe(200);
    }

    const representation = await post(transaction(entries('prefer-rep')), { Prefer: 'return=representation' });
    expect(representation.status).toBe(200);
    for (const entry of representation.body.entry) {
      expect(entry.resource.resourceType).toBe('Patient');
      expect(entry.response.location).toBe(`${server.base}/Patient/${entry.resource.id}/_history/1`);
    }

    const outcome = await post(transaction(entries('prefer-oo')), { Prefer: 'return=OperationOutcome' });
    expect(outcome.status).toBe(200);
    for (const entry of outcome.body.entry) {
      expect(entry.resource).toBeUndefined();
      expect(entry.response.outcome.resourceType).toBe('OperationOutcome');
      expect(entry.response.outcome.issue[0].severity).toBe('information');
      expect(entry.response.location).toMatch(/\/_history\/1$/);
    }
  });

  test('stores text outside ASCII byte for byte, in every entry of a multi-row insert', async () => {
    // Two- to four-byte UTF-8 (é, ß, 王, 🩺) in several entries of one type, which go in one multi-row statement.
    const names = ['Zoë Müller-Łukasiewicz', 'Straße 王小明', '🩺 Dr. Ñúñez', 'plain ascii'];
    const res = await post(
      transaction(
        names.map((text, i) => ({
          fullUrl: `urn:uuid:0b5e2d3c-1c1f-4a6e-9d43-3f1b7d8a01${String(i).padStart(2, '0')}`,
          resource: patient(`utf8-${i}`, { name: [{ text }] }),
          request: { method: 'POST', url: 'Patient' },
        }))
      )
    );
    expect(res.status).toBe(200);
    for (const [i, entry] of (res.body.entry as { resource: { id: string } }[]).entries()) {
      const back = await read(`Patient/${entry.resource.id}`);
      expect(back.body.name[0].text).toBe(names[i]);
    }
  });
});

describe('processing order: DELETE, then POST, then PUT and PATCH, then GET and HEAD', () => {
  test('GET entries listed first see the creates, updates and deletes listed after them', async () => {
    const family = 'Orderly';
    const gone = await create(patient('order-gone', { name: [{ family }] }));
    const changed = await create(patient('order-changed', { name: [{ family }] }));
    const res = await post(
      transaction([
        { request: { method: 'GET', url: `Patient?family=${family}` } },
        { request: { method: 'GET', url: `Patient/${changed.id}` } },
        { resource: { ...changed, gender: 'female' }, request: { method: 'PUT', url: `Patient/${changed.id}` } },
        { resource: patient('order-new', { name: [{ family }] }), request: { method: 'POST', url: 'Patient' } },
        { request: { method: 'DELETE', url: `Patient/${gone.id}` } },
      ])
    );
    expect(res.status).toBe(200);
    const [search, readBack, , created] = res.body.entry;
    const found = search.resource.entry.map((e: any) => e.resource);
    expect(found.map((r: any) => r.id).sort()).toEqual([changed.id, created.resource.id].sort());
    expect(found.find((r: any) => r.id === changed.id).gender).toBe('female');
    expect(readBack.resource.meta.versionId).toBe('2');
    expect(readBack.resource.gender).toBe('female');
  });

  test('of several failing entries, the one processed first is reported: DELETE before POST before PUT before GET', async () => {
    const target = await create(patient('order-fail'));
    const other = await create(patient('order-fail-other'));
    const stalePut = { resource: { ...target, active: true }, request: { method: 'PUT', url: `Patient/${target.id}`, ifMatch: 'W/"7"' } };
    const invalidPost = { resource: patient('order-fail-new', { birthDate: 'not a date' }), request: { method: 'POST', url: 'Patient' } };
    const staleDelete = { request: { method: 'DELETE', url: `Patient/${other.id}`, ifMatch: 'W/"7"' } };
    const missingGet = { request: { method: 'GET', url: 'Patient/order-no-such-patient' } };

    const deleteFirst = await post(transaction([missingGet, stalePut, invalidPost, staleDelete]));
    expect(deleteFirst.status).toBe(412);
    expectOutcomeNaming(deleteFirst.body, 3);

    const postFirst = await post(transaction([missingGet, stalePut, invalidPost]));
    expect(postFirst.status).toBe(400);
    expectOutcomeNaming(postFirst.body, 2);

    const putFirst = await post(transaction([missingGet, stalePut]));
    expect(putFirst.status).toBe(412);
    expectOutcomeNaming(putFirst.body, 1);

    const getLast = await post(transaction([missingGet]));
    expect(getLast.status).toBe(404);
    expectOutcomeNaming(getLast.body, 0);

    expect((await read(`Patient/${target.id}`)).body.meta.versionId).toBe('1');
    expect((await read(`Patient/${other.id}`)).status).toBe(200);
    expect(await countWithIdentifier('Patient', 'order-fail-new')).toBe(0);
  });
});

describe('references between entries and conditional references are rewritten', () => {
  test('a relative reference in an entry whose fullUrl is RESTful means that base\'s Type/id, and is rewritten to the created resource', async () => {
    const res = await post(
      transaction([
        { fullUrl: 'http://example.org/fhir/Patient/123', resource: { resourceType: 'Patient' }, request: { method: 'POST', url: 'Patient' } },
        {
          fullUrl: 'http://example.org/fhir/Observation/1',
          resource: { resourceType: 'Observation', status: 'final', code: { text: 'x' }, subject: { reference: 'Patient/123' } },
          request: { method: 'POST', url: 'Observation' },
        },
        {
          fullUrl: 'urn:uuid:0b7b7f4e-3a39-4d0c-9d57-2f3c1d1a0c01',
          resource: { resourceType: 'Observation', status: 'final', code: { text: 'y' }, subject: { reference: 'Patient/123' } },
          request: { method: 'POST', url: 'Observation' },
        },
      ])
    );
    expect(res.status).toBe(200);
    expect(res.body.entry[1].resource.subject.reference).toBe(`Patient/${res.body.entry[0].resource.id}`);
    // An entry without a RESTful fullUrl has no base to resolve against: its reference is left as written.
    expect(res.body.entry[2].resource.subject.reference).toBe('Patient/123');
  });

  test('urn:uuid, urn:oid and absolute fullUrls become Type/id in every Reference: nested, in extensions, in contained resources and in narrative links', async () => {
    const patientUrl = 'urn:uuid:5f1f0c5e-7d2a-4c4e-8a39-6f0e2f0a0101';
    const orgUrl = 'urn:oid:1.2.840.10004.1.77.3';
    const practitionerUrl = 'http://example.org/fhir/Practitioner/ref-prac';
    const res = await post(
      transaction([
        {
          fullUrl: 'urn:uuid:5f1f0c5e-7d2a-4c4e-8a39-6f0e2f0a0102',
          resource: {
            resourceType: 'Observation',
            status: 'final',
            code: { text: 'weight' },
            subject: { reference: patientUrl },
            performer: [{ reference: orgUrl }, { reference: practitionerUrl }, { reference: '#helper' }],
            contained: [{ resourceType: 'Practitioner', id: 'helper', extension: [{ url: 'http://example.org/employer', valueReference: { reference: orgUrl } }] }],
            extension: [{ url: 'http://example.org/about', valueReference: { reference: patientUrl } }],
            text: { status: 'generated', div: `<div xmlns="http://www.w3.org/1999/xhtml">About <a href="${patientUrl}">the patient</a></div>` },
          },
          request: { method: 'POST', url: 'Observation' },
        },
        {
          fullUrl: patientUrl,
          resource: patient('ref-1', { managingOrganization: { reference: orgUrl }, generalPractitioner: [{ reference: practitionerUrl }] }),
          request: { method: 'POST', url: 'Patient' },
        },
        { fullUrl: orgUrl, resource: { resourceType: 'Organization', name: 'Ref Org' }, request: { method: 'POST', url: 'Organization' } },
        {
          fullUrl: practitionerUrl,
          resource: { resourceType: 'Practitioner', id: 'ref-prac', name: [{ family: 'Ref' }] },
          request: { method: 'PUT', url: 'Practitioner/ref-prac' },
        },
      ])
    );
    expect(res.status).toBe(200);
    const [observationAt, patientAt, orgAt, practitionerAt] = res.body.entry.map((e: any) => locationReference(e.response.location));
    expect(observationAt).toMatch(/^Observation\//);
    expect(patientAt).toMatch(/^Patient\//);
    expect(orgAt).toMatch(/^Organization\//);
    expect(practitionerAt).toBe('Practitioner/ref-prac');

    const observation = (await read(observationAt)).body;
    expect(observation.subject.reference).toBe(patientAt);
    expect(observation.performer.map((p: any) => p.reference)).toEqual([orgAt, practitionerAt, '#helper']);
    expect(observation.contained[0].extension[0].valueReference.reference).toBe(orgAt);
    expect(observation.extension[0].valueReference.reference).toBe(patientAt);
    expect(observation.text.div).toContain(`href="${patientAt}"`);
    expect(observation.text.div).not.toContain('urn:uuid');

    const patientBack = (await read(patientAt)).body;
    expect(patientBack.managingOrganization.reference).toBe(orgAt);
    expect(patientBack.generalPractitioner[0].reference).toBe(practitionerAt);
    expect((await read(orgAt)).body.name).toBe('Ref Org');
  });

  test('a conditional reference becomes the one resource its search finds, whether stored before or created by a conditional create in the same Bundle', async () => {
    const practitioner = await create({ resourceType: 'Practitioner', identifier: [{ system: MRN, value: 'cref-prac' }] });
    const res = await post(
      transaction([
        {
          resource: {
            resourceType: 'Encounter',
            status: 'finished',
            class: { system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode', code: 'AMB' },
            participant: [{ individual: { reference: `Practitioner?identifier=${MRN}|cref-prac` } }],
            serviceProvider: { reference: `Organization?identifier=${MRN}|cref-org` },
          },
          request: { method: 'POST', url: 'Encounter' },
        },
        {
          fullUrl: 'urn:uuid:7d0b8f7e-2b9a-4f60-9d3c-000000000201',
          resource: { resourceType: 'Organization', identifier: [{ system: MRN, value: 'cref-org' }], name: 'Made here' },
          request: { method: 'POST', url: 'Organization', ifNoneExist: `identifier=${MRN}|cref-org` },
        },
      ])
    );
    expect(res.status).toBe(200);
    const encounter = (await read(locationReference(res.body.entry[0].response.location))).body;
    expect(encounter.participant[0].individual.reference).toBe(`Practitioner/${practitioner.id}`);
    expect(encounter.serviceProvider.reference).toBe(locationReference(res.body.entry[1].response.location));
    expect((await read(encounter.serviceProvider.reference)).body.name).toBe('Made here');
  });

  test('a conditional reference that matches nothing, or several, is 400 naming the entry, and nothing is written', async () => {
    await create({ resourceType: 'Practitioner', identifier: [{ system: MRN, value: 'cref-twice' }] });
    await create({ resourceType: 'Practitioner', identifier: [{ system: MRN, value: 'cref-twice' }] });
    for (const [value, why] of [
      ['cref-nobody', 'matches no resource'],
      ['cref-twice', 'more than one'],
    ]) {
      const res = await post(
        transaction([
          { resource: patient(`cref-victim-${value}`), request: { method: 'POST', url: 'Patient' } },
          {
            resource: patient(`cref-user-${value}`, { generalPractitioner: [{ reference: `Practitioner?identifier=${MRN}|${value}` }] }),
            request: { method: 'POST', url: 'Patient' },
          },
        ])
      );
      expect(res.status).toBe(400);
      expectOutcomeNaming(res.body, 1);
      expect(res.body.issue[0].diagnostics).toContain(why);
      expect(await countWithIdentifier('Patient', `cref-victim-${value}`)).toBe(0);
      expect(await countWithIdentifier('Patient', `cref-user-${value}`)).toBe(0);
    }
  });

  test('a urn:uuid reference that matches no entry is 400 naming the entry and the reference', async () => {
    const dangling = 'urn:uuid:00000000-0000-4000-8000-00000000dead';
    const res = await post(
      transaction([
        { resource: patient('dangling-victim'), request: { method: 'POST', url: 'Patient' } },
        {
          resource: { resourceType: 'Observation', status: 'final', code: { text: 'x' }, subject: { reference: dangling } },
          request: { method: 'POST', url: 'Observation' },
        },
      ])
    );
    expect(res.status).toBe(400);
    expectOutcomeNaming(res.body, 1);
    expect(res.body.issue[0].diagnostics).toContain(dangling);
    expect(await countWithIdentifier('Patient', 'dangling-victim')).toBe(0);
  });
});

describe('Bundles refused as a whole', () => {
  test('two entries with the same fullUrl are 400 naming both, and nothing is written', async () => {
    const fullUrl = 'urn:uuid:3c4f7e1a-4a8e-4c69-b1a1-00000000d0d0';
    const res = await post(
      transaction([
        { fullUrl, resource: patient('dup-1'), request: { method: 'POST', url: 'Patient' } },
        { fullUrl, resource: patient('dup-2'), request: { method: 'POST', url: 'Patient' } },
      ])
    );
    expect(res.status).toBe(400);
    expectOutcomeNaming(res.body, 1);
    expect(res.body.issue[0].diagnostics).toContain('Bundle.entry[0]');
    expect(await countWithIdentifier('Patient', 'dup-1')).toBe(0);
  });

  test('two entries changing the same resource are 400', async () => {
    const target = await create(patient('same-twice'));
    const res = await post(
      transaction([
        { resource: { ...target, active: true }, request: { method: 'PUT', url: `Patient/${target.id}` } },
        { request: { method: 'DELETE', url: `Patient?identifier=${MRN}|same-twice` } },
      ])
    );
    expect(res.status).toBe(400);
    expectOutcomeNaming(res.body, 1);
    expect((await read(`Patient/${target.id}`)).body.meta.versionId).toBe('1');
  });

  test('a Bundle of any type other than transaction or batch is 400, and so is a body that is no Bundle', async () => {
    for (const type of ['collection', 'document', 'searchset', 'transaction-response', 'history', 'message']) {
      const res = await post({ resourceType: 'Bundle', type, entry: [{ resource: patient(`type-${type}`), request: { method: 'POST', url: 'Patient' } }] });
      expect(res.status).toBe(400);
      expect(res.body.resourceType).toBe('OperationOutcome');
      expect(res.body.issue[0].diagnostics).toContain(type);
      expect(await countWithIdentifier('Patient', `type-${type}`)).toBe(0);
    }
    const notABundle = await post(patient('type-patient'));
    expect(notABundle.status).toBe(400);
    expect(notABundle.body.resourceType).toBe('OperationOutcome');
    expect(await countWithIdentifier('Patient', 'type-patient')).toBe(0);
  });

  test('an empty transaction answers an empty transaction-response', async () => {
    const res = await post(transaction([]));
    expect(res.status).toBe(200);
    expect(res.body.type).toBe('transaction-response');
    expect(res.body.entry ?? []).toEqual([]);
  });

  test('the CapabilityStatement lists the system interactions transaction and batch', async () => {
    const res = await fhirRequest('GET', `${server.base}/metadata`);
    const codes = res.body.rest[0].interaction.map((i: any) => i.code);
    expect(codes).toEqual(expect.arrayContaining(['transaction', 'batch']));
  });
});
