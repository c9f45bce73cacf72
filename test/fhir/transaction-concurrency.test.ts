import { bundle, jsonPatchBinary, MRN, patient, useBundleTestServer } from '../support/bundle-requests';
import { fhirRequest } from '../support/fhir-client';

/**
 * Transactions racing each other and plain requests, with real parallel HTTP requests:
 * the database decides, and a transaction either applies whole or fails cleanly.
 */

const { server, post, read, countWithIdentifier, locationReference } = useBundleTestServer();

function transaction(entry: unknown[]): Record<string, unknown> {
  return bundle('transaction', entry);
}

function observation(mrn: string, subject: string): Record<string, unknown> {
  return { resourceType: 'Observation', identifier: [{ system: MRN, value: mrn }], status: 'final', code: { text: 'race' }, subject: { reference: subject } };
}

/** A transaction creating Patient `mrn` if absent and an Observation `obs` about it. */
function conditionalCreateWithObservation(mrn: string, obs: string): Record<string, unknown> {
  const fullUrl = `urn:uuid:4e3a0b1c-0000-4000-8000-${obs.replace(/[^0-9]/g, '').padStart(12, '0')}`;
  return transaction([
    { fullUrl, resource: patient(mrn), request: { method: 'POST', url: 'Patient', ifNoneExist: `identifier=${MRN}|${mrn}` } },
    { resource: observation(obs, fullUrl), request: { method: 'POST', url: 'Observation' } },
  ]);
}

/** The transaction lost (409 or 412, with an OperationOutcome) or won (200). */
function expectCleanOutcome(res: { status: number; body: any }): void {
  expect([200, 409, 412]).toContain(res.status);
  if (res.status !== 200) expect(res.body.resourceType).toBe('OperationOutcome');
}

describe('concurrent conditional creates', () => {
  test('ten transactions that conditionally create the same identifier at the same moment leave exactly one resource, which all their references point at', async () => {
    for (let round = 1; round <= 3; round++) {
      const mrn = `race-cc-${round}`;
      const results = await Promise.all(Array.from({ length: 10 }, (_, i) => post(conditionalCreateWithObservation(mrn, `${round}0${i}`))));
      expect(results.map((r) => r.status)).toEqual(Array(10).fill(200));
      const patientStatuses = results.map((r) => r.body.entry[0].response.status.slice(0, 3)).sort();
      expect(patientStatuses).toEqual(['200', '200', '200', '200', '200', '200', '200', '200', '200', '201']);
      const patients = new Set(results.map((r) => locationReference(r.body.entry[0].response.location)));
      expect(patients.size).toBe(1);
      expect(await countWithIdentifier('Patient', mrn)).toBe(1);
      const [only] = patients;
      for (const r of results) {
        const obs = await read(locationReference(r.body.entry[1].response.location));
        expect(obs.body.subject.reference).toBe(only);
      }
    }
  });

  test('transactions and plain conditional creates of the same identifier at the same moment leave exactly one resource', async () => {
    const mrn = 'race-mixed';
    const results = await Promise.all(
      Array.from({ length: 10 }, (_, i) =>
        i % 2 === 0
          ? post(conditionalCreateWithObservation(mrn, `9${i}`))
          : fhirRequest('POST', `${server.base}/Patient`, { body: patient(mrn), headers: { 'If-None-Exist': `identifier=${MRN}|${mrn}` } })
      )
    );
    expect(results.map((r) => r.status).filter((s) => s !== 200 && s !== 201)).toEqual([]);
    const ids = results.map((r, i) => (i % 2 === 0 ? locationReference(r.body.entry[0].response.location) : `Patient/${r.body.id}`));
    expect(new Set(ids).size).toBe(1);
    expect(await countWithIdentifier('Patient', mrn)).toBe(1);
  });

  test('two transactions that conditionally create the same two identifiers in opposite orders both commit, leaving one resource per identifier', async () => {
    for (let round = 1; round <= 3; round++) {
      const [x, y] = [`race-xy-${round}-x`, `race-xy-${round}-y`];
      const entry = (mrn: string) => ({ resource: patient(mrn), request: { method: 'POST', url: 'Patient', ifNoneExist: `identifier=${MRN}|${mrn}` } });
      const [xy, yx] = await Promise.all([post(transaction([entry(x), entry(y)])), post(transaction([entry(y), entry(x)]))]);
      expect([xy.status, yx.status]).toEqual([200, 200]);
      expect(locationReference(xy.body.entry[0].response.location)).toBe(locationReference(yx.body.entry[1].response.location));
      expect(locationReference(xy.body.entry[1].response.location)).toBe(locationReference(yx.body.entry[0].response.location));
      expect(await countWithIdentifier('Patient', x)).toBe(1);
      expect(await countWithIdentifier('Patient', y)).toBe(1);
    }
  });

  test('eight transactions that conditionally update the same identifier at once leave one resource with versions 1 to 8', async () => {
    const mrn = 'race-cu';
    const results = await Promise.all(
      Array.from({ length: 8 }, (_, i) => post(transaction([{ resource: patient(mrn, { name: [{ family: `Writer${i}` }] }), request: { method: 'PUT', url: `Patient?identifier=${MRN}|${mrn}` } }])))
    );
    expect(results.map((r) => r.status)).toEqual(Array(8).fill(200));
    const statuses = results.map((r) => r.body.entry[0].response.status.slice(0, 3)).sort();
    expect(statuses).toEqual(['200', '200', '200', '200', '200', '200', '200', '201']);
    const versions = results.map((r) => Number(r.body.entry[0].response.etag.replace(/\D/g, ''))).sort((a, b) => a - b);
    expect(versions).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    expect(new Set(results.map((r) => locationReference(r.body.entry[0].response.location))).size).toBe(1);
    expect(await countWithIdentifier('Patient', mrn)).toBe(1);
  });
});

describe('transactions that conflict with concurrent updates', () => {
  test('a transaction and a plain update with the same If-Match: one wins, the other gets 409/412, and a losing transaction leaves none of its entries', async () => {
    const created = await fhirRequest('POST', `${server.base}/Patient`, { body: patient('race-im') });
    const ref = `Patient/${created.body.id}`;
    for (let round = 1; round <= 6; round++) {
      const current = (await read(ref)).body;
      const etag = `W/"${current.meta.versionId}"`;
      const [tx, plain] = await Promise.all([
        post(
          transaction([
            { resource: observation(`race-im-${round}`, ref), request: { method: 'POST', url: 'Observation' } },
            { resource: { ...current, gender: 'female' }, request: { method: 'PUT', url: ref, ifMatch: etag } },
          ])
        ),
        fhirRequest('PUT', `${server.base}/${ref}`, { body: { ...current, gender: 'male' }, headers: { 'If-Match': etag } }),
      ]);
      expectCleanOutcome(tx);
      expect([200, 409, 412]).toContain(plain.status);
      expect([tx.status === 200, plain.status === 200].filter(Boolean)).toHaveLength(1);
      const now = (await read(ref)).body;
      expect(now.meta.versionId).toBe(String(Number(current.meta.versionId) + 1));
      expect(now.gender).toBe(tx.status === 200 ? 'female' : 'male');
      expect(await countWithIdentifier('Observation', `race-im-${round}`)).toBe(tx.status === 200 ? 1 : 0);
    }
  });

  test('two transactions updating one resource with the same If-Match: exactly one commits, and the other leaves none of its creates', async () => {
    const created = await fhirRequest('POST', `${server.base}/Patient`, { body: patient('race-tt') });
    const ref = `Patient/${created.body.id}`;
    for (let round = 1; round <= 5; round++) {
      const current = (await read(ref)).body;
      const etag = `W/"${current.meta.versionId}"`;
      const contender = (name: string) =>
        post(
          transaction([
            { resource: observation(`race-tt-${round}-${name}`, ref), request: { method: 'POST', url: 'Observation' } },
            { resource: { ...current, name: [{ family: name }] }, request: { method: 'PUT', url: ref, ifMatch: etag } },
          ])
        );
      const results = await Promise.all([contender('A'), contender('B')]);
      results.forEach(expectCleanOutcome);
      expect(results.filter((r) => r.status === 200)).toHaveLength(1);
      const winner = results[0].status === 200 ? 'A' : 'B';
      const loser = winner === 'A' ? 'B' : 'A';
      const now = (await read(ref)).body;
      expect(now.name[0].family).toBe(winner);
      expect(now.meta.versionId).toBe(String(Number(current.meta.versionId) + 1));
      expect(await countWithIdentifier('Observation', `race-tt-${round}-${winner}`)).toBe(1);
      expect(await countWithIdentifier('Observation', `race-tt-${round}-${loser}`)).toBe(0);
    }
  });

  test('PATCH entries in transactions and plain PATCHes racing on one resource all apply: no change is lost', async () => {
    const created = await fhirRequest('POST', `${server.base}/Patient`, { body: patient('race-patch', { telecom: [{ system: 'email', value: 'first@example.org' }] }) });
    const ref = `Patient/${created.body.id}`;
    const add = (i: number) => [{ op: 'add', path: '/telecom/-', value: { system: 'phone', value: `555-000${i}` } }];
    const requests = Array.from({ length: 8 }, (_, i) =>
      i % 2 === 0
        ? post(transaction([{ resource: jsonPatchBinary(add(i)), request: { method: 'PATCH', url: ref } }]))
        : fhirRequest('PATCH', `${server.base}/${ref}`, { body: add(i), headers: { 'Content-Type': 'application/json-patch+json' } })
    );
    const results = await Promise.all(requests);
    expect(results.map((r) => r.status)).toEqual(Array(8).fill(200));
    const now = (await read(ref)).body;
    expect(now.telecom.map((t: any) => t.value).sort()).toEqual([...Array.from({ length: 8 }, (_, i) => `555-000${i}`), 'first@example.org']);
    expect(now.meta.versionId).toBe('9');
  });
});
