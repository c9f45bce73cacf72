import { evalFhirPathTyped, toTypedValue } from '@medplum/core';
import type { Resource } from '@medplum/fhirtypes';
import { compileExpression } from '../../server/search/compile-path-expression';
import { searchParamDefs } from '../../server/search/search-parameter-definitions';
import { resourceTypes } from '../../server/validation/structure-definitions';
import { officialValues } from './independent-evaluation';
import { loadHl7Examples, loadSynthea } from './search-fixtures';

/** Values as comparable strings; FHIRPath unions drop duplicates, so compare as sets. */
function valueSet(values: unknown[]): string[] {
  return [...new Set(values.map((v) => JSON.stringify(v)))].sort();
}

describe('compiled search expressions', () => {
  const examples = [...loadHl7Examples(resourceTypes), ...loadSynthea(['Patient', 'Observation', 'Encounter', 'Claim'], 1)];

  test('yield the same values as HL7 fhirpath.js for every parameter on every example', () => {
    let compared = 0;
    let nonEmpty = 0;
    const mismatches: string[] = [];
    for (const resource of examples) {
      for (const def of searchParamDefs(resource.resourceType).values()) {
        if (def.terms.length === 0 || def.type === 'composite' || def.type === 'special') continue;
        const compiled = compileExpression(resource.resourceType, def.terms).evaluate(resource).map((n) => n.value);
        const interpreted = officialValues(resource as Resource, def.code);
        compared++;
        if (interpreted.length > 0) nonEmpty++;
        const [a, b] = [valueSet(compiled), valueSet(interpreted)];
        if (JSON.stringify(a) !== JSON.stringify(b)) mismatches.push(`${resource.resourceType}/${resource.id} ${def.code}`);
      }
    }
    expect(mismatches).toEqual([]);
    expect(nonEmpty).toBeGreaterThan(5000);
    expect(compared).toBeGreaterThan(nonEmpty);
  });

  test('report the types they yield, read from the StructureDefinitions', () => {
    const identifier = compileExpression('Patient', ['Patient.identifier']);
    expect([...(identifier.resultTypes ?? [])]).toEqual(['Identifier']);
    const value = compileExpression('Observation', ['(Observation.value as CodeableConcept)']);
    expect([...(value.resultTypes ?? [])]).toEqual(['CodeableConcept']);
    const obs = { resourceType: 'Observation', status: 'final', code: {}, valueCodeableConcept: { text: 'x' } } as Resource;
    expect(value.evaluate(obs)).toEqual([{ type: 'CodeableConcept', value: { text: 'x' } }]);
    const deceased = compileExpression('Patient', ['Patient.deceased.exists() and Patient.deceased != false']);
    expect(deceased.compiled).toBe(true);
    expect(deceased.evaluate({ resourceType: 'Patient', deceasedDateTime: '2020' } as Resource)).toEqual([{ type: 'boolean', value: true }]);
    expect(deceased.evaluate({ resourceType: 'Patient' } as Resource)).toEqual([{ type: 'boolean', value: false }]);
    // Anything beyond paths, type filters and simple where() goes to the general interpreter.
    expect(compileExpression('Bundle', ['Bundle.entry[0].resource']).compiled).toBe(false);
  });

});
