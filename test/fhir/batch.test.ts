import { readdirSync } from 'node:fs';
import { bundle, expectOutcomeNaming, jsonPatchBinary, MRN, patient, useBundleTestServer } from '../support/bundle-requests';
import { HL7_EXAMPLES_DIR, readHl7Example } from '../support/hl7-examples';
import { readSyntheaBundle, referencesByPath, smallestPatientFiles } from '../support/synthea-bundles';

/**
 * Batch Bundles (https://hl7.org/fhir/R4/http.html#transaction): every entry succeeds
 * or fails on its own, failures as `entry.response.outcome`, answers in request order.
 */

const { server, post, create, read, countWithIdentifier, locationReference } = useBundleTestServer();

function batch(entry: unknown[]): Record<string, unknown> {
  return bundle('batch', entry);
}

describe('a batch', () => {
  test('writes the entries that succeed and answers each failing one with its status and an OperationOutcome naming it, in request order', async () => {
    const stale = await create(patient('b-stale'));
    const doomed = await create(patient('b-doomed'));
    const single = await create(patient('b-single'));
    await create(patient('b-twice'));
    await create(patient('b-twice'));
    const cases: { entry: Record<string, unknown>; status: string }[] = [
      { status: '201', entry: { fullUrl: 'urn:uuid:1d2c3b4a-0000-4000-8000-0000000000c1', resource: patient('b-new'), request: { method: 'POST', url: 'Patient' } } },
      { status: '400', entry: { resource: patient('b-invalid', { birthDate: 'yesterday' }), request: { method: 'POST', url: 'Patient' } } },
      { status: '404', entry: { request: { method: 'GET', url: 'Patient/b-no-such-patient' } } },
      { status: '412', entry: { resource: { ...stale, active: true }, request: { method: 'PUT', url: `Patient/${stale.id}`, ifMatch: 'W/"5"' } } },
      { status: '412', entry: { resource: patient('b-twice'), request: { method: 'POST', url: 'Patient', ifNoneExist: `identifier=${MRN}|b-twice` } } },
      { status: '204', entry: { request: { method: 'DELETE', url: `Patient/${doomed.id}` } } },
      {
        status: '400',
        entry: {
          resource: { resourceType: 'Observation', identifier: [{ system: MRN, value: 'b-dependent' }], status: 'final', code: { text: 'x' }, subject: { reference: 'urn:uuid:1d2c3b4a-0000-4000-8000-0000000000c1' } },
          request: { method: 'POST', url: 'Observation' },
        },
      },
      { status: '400', entry: { resource: patient('b-not-a-patch'), request: { method: 'PATCH', url: `Patient/${single.id}` } } },
      { status: '400', entry: { request: { url: 'Patient' } } },
      { status: '200', entry: { resource: patient('b-single', { active: true }), request: { method: 'POST', url: 'Patient', ifNoneExist: `identifier=${MRN}|b-single` } } },
      { status: '201', entry: { resource: patient('b-put', { id: 'b-put' }), request: { method: 'PUT', url: 'Patient/b-put' } } },
      { status: '404', entry: { resource: { resourceType: 'Patient' }, request: { method: 'POST', url: 'NoSuchType' } } },
      { status: '200', entry: { resource: jsonPatchBinary([{ op: 'add', path: '/gender', value: 'other' }]), request: { method: 'PATCH', url: `Patient/${single.id}` } } },
    ];
    const res = await post(batch(cases.map((c) => c.entry)));
    expect(res.status).toBe(200);
    expect(res.body.type).toBe('batch-response');
    expect(res.body.entry.map((e: any) => e.response.status.slice(0, 3))).toEqual(cases.map((c) => c.status));

    res.body.entry.forEach((entry: any, i: number) => {
      if (entry.response.status >= '400') {
        expect(entry.resource).toBeUndefined();
        expectOutcomeNaming(entry.response.outcome, i);
      } else {
        expect(entry.response.outcome).toBeUndefined();
      }
    });
    const [created, , , , , deleted, , , , matched, put, , patched] = res.body.entry;
    expect(created.response.location).toBe(`${server.base}/Patient/${created.resource.id}/_history/1`);
    expect(created.response.etag).toBe('W/"1"');
    expect(created.response.lastModified).toBe(created.resource.meta.lastUpdated);
    expect(matched.response.location).toBe(`${server.base}/Patient/${single.id}/_history/1`);
    expect(put.response.location).toBe(`${server.base}/Patient/b-put/_history/1`);
    expect(patched.response.etag).toBe('W/"2"');
    expect(deleted.response.status).toMatch(/^204/);

    expect(await countWithIdentifier('Patient', 'b-new')).toBe(1);
    expect(await countWithIdentifier('Patient', 'b-invalid')).toBe(0);
    expect(await countWithIdentifier('Observation', 'b-dependent')).toBe(0);
    expect(await countWithIdentifier('Patient', 'b-twice')).toBe(2);
    expect(await countWithIdentifier('Patient', 'b-single')).toBe(1);
    expect((await read(`Patient/${stale.id}`)).body.meta.versionId).toBe('1');
    expect((await read(`Patient/${doomed.id}`)).status).toBe(410);
    expect((await read(`Patient/${single.id}`)).body.gender).toBe('other');
    expect((await read('Patient/b-put')).status).toBe(200);
  });

  test('resolves conditional references in each entry on its own: a reference that matches one resource is rewritten, one that matches none fails only its entry', async () => {
    const practitioner = await create({ resourceType: 'Practitioner', identifier: [{ system: MRN, value: 'b-gp' }] });
    const res = await post(
      batch([
        { resource: patient('b-cref-ok', { generalPractitioner: [{ reference: `Practitioner?identifier=${MRN}|b-gp` }] }), request: { method: 'POST', url: 'Patient' } },
        { resource: patient('b-cref-none', { generalPractitioner: [{ reference: `Practitioner?identifier=${MRN}|b-nobody` }] }), request: { method: 'POST', url: 'Patient' } },
      ])
    );
    expect(res.status).toBe(200);
    const [ok, none] = res.body.entry;
    expect(ok.response.status).toMatch(/^201/);
    expect((await read(locationReference(ok.response.location))).body.generalPractitioner[0].reference).toBe(`Practitioner/${practitioner.id}`);
    expect(none.response.status).toMatch(/^400/);
    expectOutcomeNaming(none.response.outcome, 1);
    expect(none.response.outcome.issue[0].diagnostics).toContain('matches no resource');
    expect(await countWithIdentifier('Patient', 'b-cref-none')).toBe(0);
  });

  test('ifNoneExist written as Patient?identifier=… (HL7 example style) finds the existing resource', async () => {
    const existing = await create(patient('b-typed-criteria'));
    const res = await post(batch([{ resource: patient('b-typed-criteria'), request: { method: 'POST', url: 'Patient', ifNoneExist: `Patient?identifier=${MRN}|b-typed-criteria` } }]));
    expect(res.body.entry[0].response.status).toMatch(/^200/);
    expect(res.body.entry[0].response.location).toBe(`${server.base}/Patient/${existing.id}/_history/1`);
    expect(await countWithIdentifier('Patient', 'b-typed-criteria')).toBe(1);
  });

  test('Prefer: return=minimal and return=OperationOutcome shape the successful entries; failures keep their outcome', async () => {
    const entries = (mrn: string) => [
      { resource: patient(mrn), request: { method: 'POST', url: 'Patient' } },
      { resource: patient(`${mrn}-bad`, { gender: 42 }), request: { method: 'POST', url: 'Patient' } },
    ];
    const minimal = await post(batch(entries('b-min')), { Prefer: 'return=minimal' });
    expect(minimal.body.entry[0].resource).toBeUndefined();
    expect(minimal.body.entry[0].response.location).toMatch(/\/Patient\/[^/]+\/_history\/1$/);
    expect(minimal.body.entry[1].response.status).toMatch(/^400/);
    expectOutcomeNaming(minimal.body.entry[1].response.outcome, 1);

    const outcome = await post(batch(entries('b-oo')), { Prefer: 'return=OperationOutcome' });
    expect(outcome.body.entry[0].resource).toBeUndefined();
    expect(outcome.body.entry[0].response.outcome.issue[0].severity).toBe('information');
    expectOutcomeNaming(outcome.body.entry[1].response.outcome, 1);
  });
});

describe('real data as batches', () => {
  test('a Synthea patient bundle sent as a batch: entries that refer to other entries or to absent shared resources fail on their own with 400, the self-contained ones are created', async () => {
    const [file] = smallestPatientFiles(1);
    const original = readSyntheaBundle(file);
    const res = await post({ ...original, type: 'batch' });
    expect(res.status).toBe(200);
    expect(res.body.type).toBe('batch-response');
    expect(res.body.entry).toHaveLength(original.entry.length);
    // Without the information bundles loaded, only entries whose references are all to contained resources can stand alone.
    const standsAlone = original.entry.map((e) => [...referencesByPath(e.resource).values()].every((ref) => ref.startsWith('#')));
    expect(standsAlone.filter(Boolean).length).toBeGreaterThan(0);
    expect(standsAlone.filter((alone) => !alone).length).toBeGreaterThan(0);
    for (const [i, entry] of res.body.entry.entries()) {
      const expected = standsAlone[i] ? '201' : '400';
      expect({ i, status: entry.response.status.slice(0, 3) }).toEqual({ i, status: expected });
      if (standsAlone[i]) {
        const back = await read(locationReference(entry.response.location));
        expect(back.body.resourceType).toBe(original.entry[i].resource.resourceType);
      } else {
        expectOutcomeNaming(entry.response.outcome, i);
      }
    }
  });

  test("HL7's Bundle-bundle-request-simplesummary batch of searches answers each from what is stored", async () => {
    const files = readdirSync(HL7_EXAMPLES_DIR).filter((f) => f === 'Patient-example.json' || f.startsWith('Condition-'));
    const examples = files.map((f) => readHl7Example(f));
    const load = await post(batch(examples.map((r) => ({ resource: r, request: { method: 'PUT', url: `${r.resourceType}/${r.id}` } }))));
    expect(load.body.entry.map((e: any) => e.response.status.slice(0, 3))).toEqual(examples.map(() => '201'));

    const summary = readHl7Example('Bundle-bundle-request-simplesummary.json');
    const res = await post(summary);
    expect(res.status).toBe(200);
    expect(res.body.type).toBe('batch-response');
    const [patientEntry, conditions, medications, observations] = res.body.entry;
    expect(patientEntry.resource.id).toBe('example');
    expect(patientEntry.response.etag).toBe('W/"1"');
    const expectedConditions = examples.filter((r) => r.resourceType === 'Condition' && r.subject?.reference === 'Patient/example').map((r) => r.id);
    expect(expectedConditions.length).toBeGreaterThan(0);
    expect(conditions.resource.type).toBe('searchset');
    expect(conditions.resource.entry.map((e: any) => e.resource.id).sort()).toEqual(expectedConditions.sort());
    for (const empty of [medications, observations]) {
      expect(empty.response.status).toMatch(/^200/);
      expect(empty.resource.entry ?? []).toEqual([]);
    }
  });
});
