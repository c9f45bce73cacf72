import { careDateCodes, careDatedTypes, withinDataPeriod } from '../../server/search/care-date';
import { patientCompartmentCodes } from '../../server/search/compartment-definitions';
import { searchParamDef } from '../../server/search/search-parameter-definitions';

/** The care dates a Consent's dataPeriod is judged by (server/search/care-date.ts). */
test('every care date listed is an official date search parameter of its type, and its type is in the patient compartment', () => {
  const wrong: string[] = [];
  for (const type of careDatedTypes()) {
    if (patientCompartmentCodes(type).length === 0) wrong.push(`${type}: not in the patient compartment`);
    for (const code of careDateCodes(type) ?? []) {
      if (searchParamDef(type, code)?.type !== 'date') wrong.push(`${type}.${code}: not a date parameter`);
    }
  }
  expect(wrong).toEqual([]);
});

test('a deny takes what overlaps the period or has no care date; a permit only what overlaps; timeless types are outside both', () => {
  const bounds = { start: '2012-01-01', end: '2012-12-31' };
  const deny = withinDataPeriod('Observation', bounds, 'deny');
  expect(deny).toMatchObject({ kind: 'any', filters: [{ kind: 'all', filters: [{ kind: 'date', code: 'date', values: [{ prefix: 'ge' }] }, { kind: 'date', code: 'date', values: [{ prefix: 'le' }] }] }, { kind: 'all', filters: [{ kind: 'missing', code: 'date', missing: true }] }] });
  expect(withinDataPeriod('Observation', bounds, 'permit')).toMatchObject({ kind: 'all', filters: [{ kind: 'date', values: [{ prefix: 'ge' }] }, { kind: 'date', values: [{ prefix: 'le' }] }] });
  expect(withinDataPeriod('Coverage', bounds, 'deny')).toBeUndefined();
  expect(withinDataPeriod('Coverage', bounds, 'permit')).toBe('none');
  expect(withinDataPeriod('Patient', bounds, 'deny')).toBe('none');
});
