import { readdirSync, readFileSync } from 'node:fs';
import type { Resource } from '@medplum/fhirtypes';
import { SHARED_DATA_DIR } from '../../scripts/shared-data-dir';
import { applySummary } from '../../server/fhir/summary';
import { expectedSummary } from '../support/summary-oracle';

/**
 * `_summary=true` below the top level (R4 search.html#summary, ElementDefinition.isSummary):
 * every HL7 example, each checked against what the published StructureDefinitions say
 * (test/support/summary-oracle.ts reads their snapshots itself).
 */
const DIR = `${SHARED_DATA_DIR}/hl7-r4-examples`;
const examples: Resource[] = readdirSync(DIR)
  .filter((f) => f.endsWith('.json'))
  .map((f) => JSON.parse(readFileSync(`${DIR}/${f}`, 'utf8')) as Resource);

const withoutMeta = (r: Resource): Record<string, unknown> => {
  const { meta: _meta, ...rest } = r as Resource & { meta?: unknown };
  return rest;
};

test('every HL7 example keeps exactly its summary and mandatory elements, at every level, and is marked SUBSETTED', () => {
  expect(examples.length).toBeGreaterThan(500);
  let nested = 0;
  for (const example of examples) {
    const summary = applySummary(example, 'true');
    const expected = expectedSummary(example);
    expect({ id: `${example.resourceType}/${example.id}`, summary: withoutMeta(summary) }).toEqual({ id: `${example.resourceType}/${example.id}`, summary: expected });
    expect(summary.meta?.tag).toEqual(expect.arrayContaining([expect.objectContaining({ code: 'SUBSETTED' })]));
    // Examples where the summary removed something inside a kept top-level element.
    const keptTop = Object.keys(expected);
    if (keptTop.some((k) => JSON.stringify((example as unknown as Record<string, unknown>)[k]) !== JSON.stringify(expected[k]))) nested++;
  }
  expect(nested).toBeGreaterThan(50);
});

test('inside kept elements, non-summary ones go: Observation.component.referenceRange, Attachment.data, extensions', () => {
  const observation = {
    resourceType: 'Observation',
    id: 'bp',
    status: 'final',
    code: { text: 'Blood pressure', extension: [{ url: 'http://example.org/x', valueString: 'y' }] },
    component: [
      {
        code: { text: 'Systolic' },
        valueQuantity: { value: 120, unit: 'mmHg' },
        referenceRange: [{ low: { value: 90 } }],
        interpretation: [{ text: 'normal' }],
        modifierExtension: [{ url: 'http://example.org/m', valueBoolean: true }],
      },
    ],
    referenceRange: [{ text: 'top-level range' }],
  } as unknown as Resource;
  expect(withoutMeta(applySummary(observation, 'true'))).toEqual({
    resourceType: 'Observation',
    id: 'bp',
    status: 'final',
    code: { text: 'Blood pressure' },
    component: [
      {
        code: { text: 'Systolic' },
        valueQuantity: { value: 120, unit: 'mmHg' },
        modifierExtension: [{ url: 'http://example.org/m', valueBoolean: true }],
      },
    ],
  });
  const document = {
    resourceType: 'DocumentReference',
    status: 'current',
    content: [{ attachment: { contentType: 'text/plain', data: 'aGVsbG8=', url: 'http://example.org/doc', title: 'Note' } }],
    _status: { extension: [{ url: 'http://example.org/e', valueString: 'z' }] },
  } as unknown as Resource;
  expect(withoutMeta(applySummary(document, 'true'))).toEqual({
    resourceType: 'DocumentReference',
    status: 'current',
    content: [{ attachment: { contentType: 'text/plain', url: 'http://example.org/doc', title: 'Note' } }],
  });
});

test('a Bundle summarizes the resources in its entries by their own definitions', () => {
  const bundle = {
    resourceType: 'Bundle',
    type: 'collection',
    entry: [{ fullUrl: 'urn:uuid:1', resource: { resourceType: 'Patient', id: 'p', gender: 'female', contact: [{ name: { family: 'X' } }], photo: [{ url: 'http://x' }] } }],
  } as unknown as Resource;
  expect(withoutMeta(applySummary(bundle, 'true'))).toEqual({
    resourceType: 'Bundle',
    type: 'collection',
    entry: [{ fullUrl: 'urn:uuid:1', resource: { resourceType: 'Patient', id: 'p', gender: 'female' } }],
  });
});
