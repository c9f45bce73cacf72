import type { Parameters, ParametersParameter, Resource } from '@medplum/fhirtypes';
import { applyFhirPathPatch } from '../../server/storage/fhirpath-patch';
import { isOperationOutcomeError } from '../../server/core/outcome';

const patient = (): Resource =>
  ({
    resourceType: 'Patient',
    id: 'p1',
    active: true,
    birthDate: '1974-12-25',
    _birthDate: { extension: [{ url: 'http://hl7.org/fhir/StructureDefinition/patient-birthTime', valueDateTime: '1974-12-25T14:35:45-05:00' }] },
    name: [{ family: 'Chalmers', given: ['Peter', 'James'] }],
    identifier: [
      { system: 'urn:s', value: '1' },
      { system: 'urn:s', value: '2' },
    ],
  }) as Resource;

function op(type: string, path: string, more: ParametersParameter[] = []): ParametersParameter {
  return { name: 'operation', part: [{ name: 'type', valueCode: type }, { name: 'path', valueString: path }, ...more] };
}

function patch(resource: Resource, ...operations: ParametersParameter[]): any {
  return applyFhirPathPatch(resource, { resourceType: 'Parameters', parameter: operations } as Parameters);
}

function statusOf(work: () => unknown): number | undefined {
  try {
    work();
    return undefined;
  } catch (err) {
    if (isOperationOutcomeError(err)) return err.status;
    throw err;
  }
}

describe('FHIRPath Patch', () => {
  test('add appends to a list, sets an absent single element, and refuses one that is present', () => {
    const before = patient();
    const result = patch(
      before,
      op('add', 'Patient.name[0]', [{ name: 'name', valueString: 'given' }, { name: 'value', valueString: 'Jim' }]),
      op('add', 'Patient', [{ name: 'name', valueString: 'gender' }, { name: 'value', valueCode: 'male' }]),
      op('add', 'Patient', [{ name: 'name', valueString: 'name' }, { name: 'value', valueHumanName: { family: 'Windsor' } }])
    );
    expect(result.name).toEqual([{ family: 'Chalmers', given: ['Peter', 'James', 'Jim'] }, { family: 'Windsor' }]);
    expect(result.gender).toBe('male');
    expect((before as any).name[0].given).toEqual(['Peter', 'James']); // the input is not touched
    expect(statusOf(() => patch(patient(), op('add', 'Patient', [{ name: 'name', valueString: 'active' }, { name: 'value', valueBoolean: false }])))).toBe(422);
  });

  test('add of a choice element stores it under its typed key; an element the type lacks is 422', () => {
    const result = patch(patient(), op('add', 'Patient', [{ name: 'name', valueString: 'deceased' }, { name: 'value', valueBoolean: true }]));
    expect(result.deceasedBoolean).toBe(true);
    expect(statusOf(() => patch(patient(), op('add', 'Patient', [{ name: 'name', valueString: 'colour' }, { name: 'value', valueString: 'blue' }])))).toBe(422);
  });

  test('add of an anonymous element from parts builds it with lists where the definitions have lists', () => {
    const result = patch(
      patient(),
      op('add', 'Patient', [
        { name: 'name', valueString: 'contact' },
        {
          name: 'value',
          part: [
            { name: 'name', valueHumanName: { family: 'du Marché' } },
            { name: 'telecom', valueContactPoint: { system: 'phone', value: '555' } },
            { name: 'gender', valueCode: 'female' },
          ],
        },
      ])
    );
    expect(result.contact).toEqual([{ name: { family: 'du Marché' }, telecom: [{ system: 'phone', value: '555' }], gender: 'female' }]);
  });

  test('insert puts a value at an index of a list, also of a list that is absent; beyond the end is 422', () => {
    const result = patch(
      patient(),
      op('insert', 'Patient.identifier', [{ name: 'value', valueIdentifier: { system: 'urn:s', value: '0' } }, { name: 'index', valueInteger: 0 }]),
      op('insert', 'Patient.telecom', [{ name: 'value', valueContactPoint: { system: 'email', value: 'a@b.c' } }, { name: 'index', valueInteger: 0 }])
    );
    expect(result.identifier.map((i: { value: string }) => i.value)).toEqual(['0', '1', '2']);
    expect(result.telecom).toEqual([{ system: 'email', value: 'a@b.c' }]);
    expect(statusOf(() => patch(patient(), op('insert', 'Patient.identifier', [{ name: 'value', valueIdentifier: { value: 'x' } }, { name: 'index', valueInteger: 3 }])))).toBe(422);
  });

  test('delete removes one element (a primitive with its extensions), nothing is no error, several is 422', () => {
    const result = patch(patient(), op('delete', "Patient.identifier.where(value='2')"), op('delete', 'Patient.birthDate'), op('delete', 'Patient.gender'));
    expect(result.identifier).toEqual([{ system: 'urn:s', value: '1' }]);
    expect(result.birthDate).toBeUndefined();
    expect(result._birthDate).toBeUndefined();
    expect(statusOf(() => patch(patient(), op('delete', 'Patient.identifier')))).toBe(422);
    const emptied = patch(patient(), op('delete', 'Patient.name[0].given[0]'), op('delete', 'Patient.name[0].given[0]'));
    expect(emptied.name).toEqual([{ family: 'Chalmers' }]);
  });

  test('replace sets a single element or list item; a choice that changes type changes key', () => {
    const result = patch(
      patient(),
      op('replace', 'Patient.birthDate', [{ name: 'value', valueDate: '1975-01-01' }]),
      op('replace', 'Patient.name[0].given[1]', [{ name: 'value', valueString: 'Jacques' }]),
      op('replace', "Patient.identifier.where(value='1')", [{ name: 'value', valueIdentifier: { system: 'urn:t', value: '9' } }])
    );
    expect(result.birthDate).toBe('1975-01-01');
    expect(result._birthDate).toBeDefined(); // replacing the value keeps its extensions
    expect(result.name[0].given).toEqual(['Peter', 'Jacques']);
    expect(result.identifier[0]).toEqual({ system: 'urn:t', value: '9' });
    const observation = { resourceType: 'Observation', status: 'final', code: { text: 'x' }, valueQuantity: { value: 5 } } as Resource;
    const changed = patch(observation, op('replace', 'Observation.value', [{ name: 'value', valueString: 'five' }]));
    expect(changed.valueString).toBe('five');
    expect(changed.valueQuantity).toBeUndefined();
    expect(statusOf(() => patch(patient(), op('replace', 'Patient.gender', [{ name: 'value', valueCode: 'male' }])))).toBe(422);
  });

  test('move reorders a list; indexes out of range are 422', () => {
    const result = patch(patient(), op('move', 'Patient.identifier', [{ name: 'source', valueInteger: 1 }, { name: 'destination', valueInteger: 0 }]));
    expect(result.identifier.map((i: { value: string }) => i.value)).toEqual(['2', '1']);
    expect(statusOf(() => patch(patient(), op('move', 'Patient.identifier', [{ name: 'source', valueInteger: 2 }, { name: 'destination', valueInteger: 0 }])))).toBe(422);
    // The resource itself is not a list (found by fuzzing: it was a TypeError, a 500).
    expect(statusOf(() => patch(patient(), op('move', 'Patient', [{ name: 'source', valueInteger: 0 }, { name: 'destination', valueInteger: 0 }])))).toBe(422);
    expect(statusOf(() => patch(patient(), op('insert', 'Patient', [{ name: 'index', valueInteger: 0 }, { name: 'value', valueString: 'x' }])))).toBe(422);
  });

  test('malformed documents are 400: no type, an unknown type, a missing part, a path that is not FHIRPath, another parameter name', () => {
    expect(statusOf(() => patch(patient(), { name: 'operation', part: [{ name: 'path', valueString: 'Patient' }] }))).toBe(400);
    expect(statusOf(() => patch(patient(), op('copy', 'Patient')))).toBe(400);
    expect(statusOf(() => patch(patient(), op('replace', 'Patient.active')))).toBe(400);
    expect(statusOf(() => patch(patient(), op('insert', 'Patient.identifier', [{ name: 'value', valueIdentifier: {} }])))).toBe(400);
    expect(statusOf(() => patch(patient(), op('delete', 'Patient.name[')))).toBe(400);
    expect(statusOf(() => patch(patient(), { name: 'op', part: [] }))).toBe(400);
  });
});
