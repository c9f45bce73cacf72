import { fhirRequest } from '../support/fhir-client';
import { mintToken } from '../support/mint-token';
import { startTestServer, type TestServer } from '../support/test-server';

let server: TestServer;
let system: string;

const call = (token: string, path: string, method = 'GET', body?: unknown) =>
  fhirRequest(method, `${server.base}${path}`, { body, headers: { Authorization: `Bearer ${token}` } });

const put = async (resource: { resourceType: string; id: string }): Promise<void> => {
  const res = await call(system, `/${resource.resourceType}/${resource.id}`, 'PUT', resource);
  expect(res.status).toBeLessThan(300);
};

const COPAY = { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/coverage-copay-type', code: 'copay' }] };

function claim(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    resourceType: 'Claim',
    status: 'active',
    type: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/claim-type', code: 'professional' }] },
    use: 'claim',
    patient: { reference: 'Patient/claimant' },
    created: '2026-06-01',
    provider: { reference: 'Organization/hospital' },
    insurer: { reference: 'Organization/insurer' },
    priority: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/processpriority', code: 'normal' }] },
    insurance: [{ sequence: 1, focal: true, coverage: { reference: 'Coverage/policy' } }],
    item: [
      { sequence: 1, productOrService: { text: 'consultation' }, unitPrice: { value: 60, currency: 'EUR' }, quantity: { value: 2 } },
      { sequence: 2, productOrService: { text: 'blood test' }, net: { value: 35.5, currency: 'EUR' } },
    ],
    ...overrides,
  };
}

const amount = (list: { category: { coding: { code: string }[] }; amount?: { value: number } }[], code: string): number | undefined =>
  list.find((a) => a.category.coding[0].code === code)?.amount?.value;

beforeAll(async () => {
  server = await startTestServer({ AUTH_REQUIRED: 'true' });
  system = await mintToken(server, { scope: 'system/*.*' });
  await put({ resourceType: 'Organization', id: 'hospital', name: 'Hospital' } as never);
  await put({ resourceType: 'Organization', id: 'insurer', name: 'Insurer' } as never);
  await put({ resourceType: 'Organization', id: 'other-insurer', name: 'Other insurer' } as never);
  await put({ resourceType: 'Practitioner', id: 'doctor', name: [{ family: 'Doctor' }] } as never);
  await put({ resourceType: 'PractitionerRole', id: 'doctor-at-hospital', practitioner: { reference: 'Practitioner/doctor' }, organization: { reference: 'Organization/hospital' } } as never);
  await put({ resourceType: 'Patient', id: 'claimant', managingOrganization: { reference: 'Organization/hospital' } } as never);
  await put({ resourceType: 'Patient', id: 'someone-else', managingOrganization: { reference: 'Organization/hospital' } } as never);
  const coverage = (id: string, more: Record<string, unknown>) =>
    put({ resourceType: 'Coverage', id, status: 'active', beneficiary: { reference: 'Patient/claimant' }, payor: [{ reference: 'Organization/insurer' }], period: { start: '2026-01-01', end: '2026-12-31' }, ...more } as never);
  await coverage('policy', { costToBeneficiary: [{ type: COPAY, valueMoney: { value: 20, currency: 'EUR' } }] });
  const share = (code: string, value: Record<string, unknown>) => ({ type: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/coverage-copay-type', code }] }, ...value });
  await coverage('deductible-plan', {
    costToBeneficiary: [share('deductible', { valueMoney: { value: 500, currency: 'EUR' } }), share('copaypct', { valueQuantity: { value: 20, unit: '%' } })],
  });
  await coverage('small-deductible', { costToBeneficiary: [share('deductible', { valueMoney: { value: 100, currency: 'EUR' } })] });
  await coverage('capped', {
    costToBeneficiary: [
      share('copay', { valueMoney: { value: 30, currency: 'EUR' } }),
      share('copaypct', { valueQuantity: { value: 50, unit: '%' } }),
      share('maxoutofpocket', { valueMoney: { value: 100, currency: 'EUR' } }),
    ],
  });
  await coverage('cancelled', { status: 'cancelled' });
  await coverage('expired', { period: { start: '2020-01-01', end: '2020-12-31' } });
  await coverage('not-theirs', { beneficiary: { reference: 'Patient/someone-else' } });
});
afterAll(async () => {
  await server.stop();
});

describe('Claim/$submit', () => {
  test('a practitioner submits a Claim: it is stored, and the answer is the stored ClaimResponse, adjudicated against the coverage', async () => {
    const doctor = await mintToken(server, { scope: 'user/*.cruds', userId: 'u-doctor', fhirUser: 'Practitioner/doctor', role: 'practitioner' });
    const res = await call(doctor, '/Claim/$submit', 'POST', claim());
    expect(res.status).toBe(200);
    const response = res.body;
    expect(response.resourceType).toBe('ClaimResponse');
    expect(response).toMatchObject({ status: 'active', use: 'claim', outcome: 'complete', patient: { reference: 'Patient/claimant' }, insurer: { reference: 'Organization/insurer' } });
    // 2 × 60 and 35.50 submitted; the copay of 20 comes off the first item.
    expect(amount(response.item[0].adjudication, 'submitted')).toBe(120);
    expect(amount(response.item[0].adjudication, 'copay')).toBe(20);
    expect(amount(response.item[0].adjudication, 'benefit')).toBe(100);
    expect(amount(response.item[1].adjudication, 'benefit')).toBe(35.5);
    expect(amount(response.total, 'submitted')).toBe(155.5);
    expect(amount(response.total, 'benefit')).toBe(135.5);
    expect(response.payment.amount).toEqual({ value: 135.5, currency: 'EUR' });

    const stored = await call(system, `/ClaimResponse/${response.id}`);
    expect(stored.body).toEqual(response);
    const claimId = response.request.reference.replace('Claim/', '');
    const storedClaim = await call(system, `/Claim/${claimId}`);
    expect(storedClaim.status).toBe(200);
    expect(storedClaim.body.item).toHaveLength(2);

    const audit = await call(system, `/AuditEvent?entity=ClaimResponse/${response.id}&action=E`);
    expect(audit.body.entry).toHaveLength(1);
    const entities = audit.body.entry[0].resource.entity.map((e: { what?: { reference?: string } }) => e.what?.reference);
    expect(entities).toEqual(expect.arrayContaining([`Claim/${claimId}`, `ClaimResponse/${response.id}`]));
  });

  test("the yearly deductible is used up across claims, then the coinsurance (copaypct) is the patient's share; a pre-authorization does not use it", async () => {
    const submit = async (coverageId: string, net: number, use = 'claim') => {
      const res = await call(system, '/Claim/$submit', 'POST', claim({
        use,
        insurance: [{ sequence: 1, focal: true, coverage: { reference: `Coverage/${coverageId}` } }],
        item: [{ sequence: 1, productOrService: { text: 'care' }, net: { value: net, currency: 'EUR' } }],
      }));
      expect(res.status).toBe(200);
      return res.body;
    };
    const first = await submit('deductible-plan', 300);
    expect([amount(first.item[0].adjudication, 'deductible'), amount(first.item[0].adjudication, 'benefit')]).toEqual([300, 0]);
    expect(amount(first.total, 'deductible')).toBe(300);
    const second = await submit('deductible-plan', 400);
    // 200 of deductible left; of the other 200 the insurer pays 80 %.
    expect(amount(second.item[0].adjudication, 'deductible')).toBe(200);
    expect(second.item[0].adjudication.find((a: { category: { coding: { code: string }[] } }) => a.category.coding[0].code === 'eligpercent')?.value).toBe(80);
    expect(amount(second.item[0].adjudication, 'benefit')).toBe(160);
    expect(second.payment.amount.value).toBe(160);
    const preauthorization = await submit('deductible-plan', 1000, 'preauthorization');
    expect(amount(preauthorization.item[0].adjudication, 'deductible')).toBeUndefined();
    expect(amount(preauthorization.item[0].adjudication, 'benefit')).toBe(800);
    const third = await submit('deductible-plan', 100);
    expect([amount(third.item[0].adjudication, 'deductible'), amount(third.item[0].adjudication, 'benefit')]).toEqual([undefined, 80]);

    // An out-of-pocket maximum of 100: copay 30 + half the rest, until the patient has paid 100 this year.
    const shares = [];
    for (let i = 0; i < 3; i++) {
      const response = await submit('capped', 100);
      shares.push(100 - (amount(response.total, 'benefit') as number));
    }
    expect(shares).toEqual([65, 35, 0]);

    // Two claims on one Coverage at once: the deductible is taken once.
    const both = await Promise.all([submit('small-deductible', 100), submit('small-deductible', 100)]);
    expect(both.map((r) => amount(r.total, 'deductible') ?? 0).sort()).toEqual([0, 100]);
    expect(both.map((r) => amount(r.total, 'benefit')).sort()).toEqual([0, 100]);
  });

  test('the Claim may come as Parameters with a "resource"; a pre-authorization gets a preAuthRef and no payment', async () => {
    const res = await call(system, '/Claim/$submit', 'POST', { resourceType: 'Parameters', parameter: [{ name: 'resource', resource: claim({ use: 'preauthorization' }) }] });
    expect(res.status).toBe(200);
    expect(res.body.outcome).toBe('complete');
    expect(res.body.preAuthRef).toMatch(/^preauth-/);
    expect(res.body.payment).toBeUndefined();
  });

  test.each([
    ['a Coverage that does not exist', { insurance: [{ sequence: 1, focal: true, coverage: { reference: 'Coverage/nowhere' } }] }, 'coverage-not-found'],
    ['a cancelled Coverage', { insurance: [{ sequence: 1, focal: true, coverage: { reference: 'Coverage/cancelled' } }] }, 'coverage-inactive'],
    ['a Coverage not in force that day', { insurance: [{ sequence: 1, focal: true, coverage: { reference: 'Coverage/expired' } }] }, 'coverage-period'],
    ["another patient's Coverage", { insurance: [{ sequence: 1, focal: true, coverage: { reference: 'Coverage/not-theirs' } }] }, 'coverage-other-patient'],
    ['an insurer that is not a payor', { insurer: { reference: 'Organization/other-insurer' } }, 'insurer-not-payor'],
  ])('%s is answered with outcome error naming it, and nothing paid', async (_label, overrides, code) => {
    const res = await call(system, '/Claim/$submit', 'POST', claim(overrides));
    expect(res.status).toBe(200);
    expect(res.body.outcome).toBe('error');
    expect(res.body.error.map((e: { code: { coding: { code: string }[] } }) => e.code.coding[0].code)).toContain(code);
    expect(res.body.payment).toBeUndefined();
    expect((await call(system, `/ClaimResponse/${res.body.id}`)).status).toBe(200);
  });

  test('an invalid Claim is 400 and nothing is stored; a body that is no Claim is 400', async () => {
    const before = await call(system, '/Claim?_summary=count');
    const invalid = await call(system, '/Claim/$submit', 'POST', claim({ use: 'gift' }));
    expect(invalid.status).toBe(400);
    expect(invalid.body.resourceType).toBe('OperationOutcome');
    const after = await call(system, '/Claim?_summary=count');
    expect(after.body.total).toBe(before.body.total);
    expect((await call(system, '/Claim/$submit', 'POST', { resourceType: 'Patient' })).status).toBe(400);
  });

  test('a Bundle of a Claim and the resources it refers to: they are stored, references rewritten, and the answer is a Bundle of the ClaimResponse and them', async () => {
    const bundle = {
      resourceType: 'Bundle',
      type: 'collection',
      entry: [
        { fullUrl: 'urn:uuid:7f4a1b2c-0000-4000-8000-000000000001', resource: claim({ patient: { reference: 'urn:uuid:7f4a1b2c-0000-4000-8000-000000000002' }, insurance: [{ sequence: 1, focal: true, coverage: { reference: 'urn:uuid:7f4a1b2c-0000-4000-8000-000000000003' } }] }) },
        { fullUrl: 'urn:uuid:7f4a1b2c-0000-4000-8000-000000000002', resource: { resourceType: 'Patient', name: [{ family: 'Bundled' }] } },
        {
          fullUrl: 'urn:uuid:7f4a1b2c-0000-4000-8000-000000000003',
          resource: { resourceType: 'Coverage', status: 'active', beneficiary: { reference: 'urn:uuid:7f4a1b2c-0000-4000-8000-000000000002' }, payor: [{ reference: 'Organization/insurer' }], costToBeneficiary: [{ type: COPAY, valueMoney: { value: 50, currency: 'EUR' } }] },
        },
        // The insurer as this server knows it: referred to, not written again.
        { fullUrl: `${server.base}/Organization/insurer`, resource: { resourceType: 'Organization', id: 'insurer', name: 'Renamed by the submitter' } },
      ],
    };
    const res = await call(system, '/Claim/$submit', 'POST', bundle);
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ resourceType: 'Bundle', type: 'collection' });
    const [response, storedClaim, ...others] = res.body.entry.map((e: { resource: any }) => e.resource);
    expect(response.resourceType).toBe('ClaimResponse');
    expect(storedClaim.resourceType).toBe('Claim');
    expect(others.map((r: { resourceType: string }) => r.resourceType).sort()).toEqual(['Coverage', 'Patient']);
    const patient = others.find((r: { resourceType: string }) => r.resourceType === 'Patient');
    const coverage = others.find((r: { resourceType: string }) => r.resourceType === 'Coverage');
    // References between the entries point at what was stored; the bundled Coverage's copay of 50 was applied.
    expect(storedClaim.patient.reference).toBe(`Patient/${patient.id}`);
    expect(storedClaim.insurance[0].coverage.reference).toBe(`Coverage/${coverage.id}`);
    expect(coverage.beneficiary.reference).toBe(`Patient/${patient.id}`);
    expect(response).toMatchObject({ outcome: 'complete', patient: { reference: `Patient/${patient.id}` }, request: { reference: `Claim/${storedClaim.id}` } });
    expect(amount(response.item[0].adjudication, 'copay')).toBe(50);
    for (const r of [response, storedClaim, patient, coverage]) expect((await call(system, `/${r.resourceType}/${r.id}`)).body).toEqual(r);
    const insurer = await call(system, '/Organization/insurer');
    expect([insurer.body.name, insurer.body.meta.versionId]).toEqual(['Insurer', '1']);
  });

  test('a Bundle of a Claim and its resources is all or nothing: one invalid resource is a 400 and nothing of it is stored', async () => {
    const count = async (type: string): Promise<number> => (await call(system, `/${type}?_summary=count`)).body.total;
    const before = [await count('Claim'), await count('Patient'), await count('ClaimResponse')];
    const res = await call(system, '/Claim/$submit', 'POST', {
      resourceType: 'Bundle',
      type: 'collection',
      entry: [
        { fullUrl: 'urn:uuid:7f4a1b2c-0000-4000-8000-000000000011', resource: claim({ patient: { reference: 'urn:uuid:7f4a1b2c-0000-4000-8000-000000000012' } }) },
        { fullUrl: 'urn:uuid:7f4a1b2c-0000-4000-8000-000000000012', resource: { resourceType: 'Patient', gender: 'bogus' } },
      ],
    });
    expect(res.status).toBe(400);
    expect(res.body.resourceType).toBe('OperationOutcome');
    expect([await count('Claim'), await count('Patient'), await count('ClaimResponse')]).toEqual(before);
  });

  test('a Bundle of claims is answered claim by claim, in order: a ClaimResponse, a Bundle for a bundled claim, an OperationOutcome for one refused', async () => {
    const res = await call(system, '/Claim/$submit', 'POST', {
      resourceType: 'Parameters',
      parameter: [
        {
          name: 'resource',
          resource: {
            resourceType: 'Bundle',
            type: 'collection',
            entry: [
              { resource: claim() },
              { resource: claim({ use: 'gift' }) },
              {
                resource: {
                  resourceType: 'Bundle',
                  type: 'collection',
                  entry: [
                    { fullUrl: 'urn:uuid:7f4a1b2c-0000-4000-8000-000000000021', resource: claim({ patient: { reference: 'urn:uuid:7f4a1b2c-0000-4000-8000-000000000022' } }) },
                    { fullUrl: 'urn:uuid:7f4a1b2c-0000-4000-8000-000000000022', resource: { resourceType: 'Patient', name: [{ family: 'Batched' }] } },
                  ],
                },
              },
            ],
          },
        },
      ],
    });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ resourceType: 'Bundle', type: 'collection' });
    const [first, second, third] = res.body.entry.map((e: { resource: any }) => e.resource);
    expect(res.body.entry).toHaveLength(3);
    expect(first).toMatchObject({ resourceType: 'ClaimResponse', outcome: 'complete' });
    expect(res.body.entry[0].fullUrl).toBe(`${server.base}/ClaimResponse/${first.id}`);
    expect(second.resourceType).toBe('OperationOutcome');
    expect(second.issue[0].severity).toBe('error');
    expect(third.resourceType).toBe('Bundle');
    expect(third.entry[0].resource).toMatchObject({ resourceType: 'ClaimResponse', outcome: 'error' });
    // The bundled patient has no Coverage/policy of theirs: adjudicated, with the error named.
    expect(third.entry[0].resource.error.map((e: { code: { coding: { code: string }[] } }) => e.code.coding[0].code)).toContain('coverage-other-patient');
    expect(third.entry[1].resource.resourceType).toBe('Claim');
    // Entries that are neither Claims nor Bundles make the request a 400.
    const mixed = await call(system, '/Claim/$submit', 'POST', { resourceType: 'Bundle', type: 'collection', entry: [{ resource: claim() }, { resource: claim() }, { resource: { resourceType: 'Patient' } }] });
    expect(mixed.status).toBe(400);
  });

  test('who may not create Claims may not submit them: an insurer and a patient are refused with 403', async () => {
    const insurer = await mintToken(server, { scope: 'user/*.cruds', userId: 'u-insurer', fhirUser: 'Organization/insurer', role: 'insurer' });
    const patient = await mintToken(server, { scope: 'patient/*.cruds', userId: 'u-claimant', fhirUser: 'Patient/claimant', role: 'patient', patient: 'claimant' });
    for (const token of [insurer, patient]) {
      const res = await call(token, '/Claim/$submit', 'POST', claim());
      expect(res.status).toBe(403);
    }
  });

  test('the CapabilityStatement lists $submit on Claim with the official OperationDefinition', async () => {
    const metadata = await fhirRequest('GET', `${server.base}/metadata`);
    const claimCapability = metadata.body.rest[0].resource.find((r: { type: string }) => r.type === 'Claim');
    expect(claimCapability.operation).toEqual(expect.arrayContaining([{ name: 'submit', definition: 'http://hl7.org/fhir/OperationDefinition/Claim-submit' }]));
  });
});
