import { isOperationOutcomeError } from '../../server/core/outcome';
import { assertValidResource, validateResource } from '../../server/validation/validate-resource';
import type { ValidationOptions } from '../../server/validation/validate-resource';

function errorsAt(
  resource: unknown,
  options?: ValidationOptions
): { expression: string | undefined; code: string; text: string | undefined }[] {
  return validateResource(resource, options)
    .filter((i) => i.severity === 'error' || i.severity === 'fatal')
    .map((i) => ({ expression: i.expression?.[0], code: i.code, text: i.diagnostics }));
}

describe('validateResource', () => {
  test('a minimal valid patient has no issues', () => {
    expect(validateResource({ resourceType: 'Patient', id: 'p1', gender: 'female', birthDate: '1970-01-31' })).toEqual([]);
  });

  test('an unknown property is an error at its path', () => {
    expect(errorsAt({ resourceType: 'Patient', name: [{ family: 'X', nickname: 'Y' }] })).toEqual([
      expect.objectContaining({ expression: 'Patient.name[0].nickname', code: 'structure' }),
    ]);
  });

  test('a single value where an array is required, and too many values, are errors', () => {
    expect(errorsAt({ resourceType: 'Patient', name: { family: 'X' } })).toEqual([
      expect.objectContaining({ expression: 'Patient.name', code: 'structure' }),
    ]);
    expect(errorsAt({ resourceType: 'Patient', gender: ['male', 'female'] })).toEqual([
      expect.objectContaining({ expression: 'Patient.gender', code: 'structure' }),
    ]);
  });

  test('a missing required element is an error naming it', () => {
    expect(errorsAt({ resourceType: 'Observation', code: { text: 'x' } })).toEqual([
      expect.objectContaining({ expression: 'Observation.status', code: 'required' }),
    ]);
  });

  test('a badly formatted date is an error', () => {
    expect(errorsAt({ resourceType: 'Patient', birthDate: '31/01/1970' })).toEqual([
      expect.objectContaining({ expression: 'Patient.birthDate', code: 'value' }),
    ]);
    expect(errorsAt({ resourceType: 'Patient', birthDate: '1970-02-30' })).toHaveLength(1);
  });

  test('a dateTime with a time but no timezone is an error', () => {
    expect(errorsAt({ resourceType: 'Observation', status: 'final', code: { text: 'x' }, effectiveDateTime: '2020-01-01T10:00:00' })).toEqual([
      expect.objectContaining({ expression: 'Observation.effectiveDateTime', code: 'value' }),
    ]);
  });

  test('empty strings, objects and arrays are errors', () => {
    expect(errorsAt({ resourceType: 'Patient', name: [{ family: '' }], address: [{}], telecom: [] })).toHaveLength(3);
  });

  test('two values of one choice element are an error', () => {
    const obs = { resourceType: 'Observation', status: 'final', code: { text: 'x' }, valueString: 'a', valueBoolean: true };
    expect(errorsAt(obs)).toEqual([expect.objectContaining({ expression: 'Observation.valueBoolean' })]);
  });

  test('primitive extensions are validated and may stand in for the value', () => {
    const ext = { extension: [{ url: 'http://hl7.org/fhir/StructureDefinition/data-absent-reason', valueCode: 'unknown' }] };
    expect(errorsAt({ resourceType: 'Patient', _birthDate: ext, name: [{ given: [null, 'B'], _given: [ext, null] }] })).toEqual([]);
    expect(errorsAt({ resourceType: 'Patient', _birthDate: { foo: 1 } })).toEqual([
      expect.objectContaining({ expression: 'Patient._birthDate.foo' }),
    ]);
  });

  test('an invariant violation is reported with its key (pat-1: a contact needs details)', () => {
    expect(errorsAt({ resourceType: 'Patient', contact: [{ gender: 'male' }] })).toEqual([
      expect.objectContaining({ expression: 'Patient.contact[0]', code: 'invariant', text: expect.stringContaining('pat-1') }),
    ]);
  });

  test('a code outside its required value set is an error (Patient.gender = robot)', () => {
    expect(errorsAt({ resourceType: 'Patient', gender: 'robot' })).toEqual([
      expect.objectContaining({ expression: 'Patient.gender', code: 'code-invalid' }),
    ]);
  });

  test('contained resources are validated and must be referenced', () => {
    const condition = {
      resourceType: 'Condition',
      subject: { reference: '#p' },
      contained: [{ resourceType: 'Patient', id: 'p', gender: 'robot' }],
    };
    expect(errorsAt(condition)).toEqual([expect.objectContaining({ expression: 'Condition.contained[0].gender' })]);
    expect(errorsAt({ ...condition, subject: { reference: '#other' }, contained: [{ resourceType: 'Patient', id: 'p' }] })).toHaveLength(2);
  });

  test('resources inside Bundle entries are validated, and fullUrls must be absolute', () => {
    const bundle = {
      resourceType: 'Bundle',
      type: 'collection',
      entry: [{ fullUrl: 'Patient/1', resource: { resourceType: 'Patient', birthDate: 'never' } }],
    };
    expect(errorsAt(bundle).map((e) => e.expression)).toEqual(['Bundle.entry[0].resource.birthDate', 'Bundle.entry[0].fullUrl']);
  });

  test('a resource type that is not R4 is rejected', () => {
    expect(errorsAt({ resourceType: 'SubscriptionStatus' })).toHaveLength(1);
    expect(errorsAt({ resourceType: 'Nonsense' })).toHaveLength(1);
  });

  test('non-object input is an issue, not an exception', () => {
    for (const input of [null, 5, 'Patient', [], [{ resourceType: 'Patient' }], true, undefined]) {
      expect(errorsAt(input)).toEqual([expect.objectContaining({ code: 'structure' })]);
    }
  });

  test('10,000 levels of nesting give an issue, not a stack overflow', () => {
    // Built as text: JSON.stringify itself overflows at this depth, JSON.parse does not.
    const open = '{"resourceType":"Parameters","parameter":[{"name":"p","resource":'.repeat(10_000);
    const parsed = JSON.parse(open + '{"resourceType":"Patient"}' + '}]}'.repeat(10_000)) as unknown;
    expect(errorsAt(parsed)).toEqual([expect.objectContaining({ code: 'structure' })]);
    expect(errorsAt(JSON.parse('['.repeat(10_000) + ']'.repeat(10_000)))).toHaveLength(1);

    let extensions: unknown = { url: 'http://x', valueString: 'x' };
    for (let i = 0; i < 10_000; i++) {
      extensions = { url: 'http://x', extension: [extensions] };
    }
    expect(errorsAt({ resourceType: 'Patient', extension: [extensions] })).toEqual([
      expect.objectContaining({ code: 'structure' }),
    ]);
  });

  test('assertValidResource throws a 400 OperationOutcomeError carrying every issue', () => {
    expect.assertions(3);
    try {
      assertValidResource({ resourceType: 'Patient', gender: 'robot', birthDate: 'x' });
    } catch (err) {
      expect(isOperationOutcomeError(err)).toBe(true);
      if (isOperationOutcomeError(err)) {
        expect(err.status).toBe(400);
        expect(err.outcome.issue).toHaveLength(2);
      }
    }
  });

  test('an extension R4 defines is checked against its definition, wherever it is; one R4 does not define is accepted', () => {
    const birthPlace = 'http://hl7.org/fhir/StructureDefinition/patient-birthPlace';
    expect(errorsAt({ resourceType: 'Patient', extension: [{ url: birthPlace, valueString: 'Paris' }] }).map((e) => e.expression)).toEqual([
      'Patient.extension[0].valueString',
    ]);
    expect(errorsAt({ resourceType: 'Patient', extension: [{ url: birthPlace, valueAddress: { city: 'Paris' } }] })).toEqual([]);
    // On an element, inside a datatype: HumanName.family's own-prefix extension takes a string.
    const ownPrefix = 'http://hl7.org/fhir/StructureDefinition/humanname-own-prefix';
    const name = (value: Record<string, unknown>): unknown => ({ resourceType: 'Patient', name: [{ family: 'Berg', _family: { extension: [{ url: ownPrefix, ...value }] } }] });
    expect(errorsAt(name({ valueString: 'van den' }))).toEqual([]);
    expect(errorsAt(name({ valueBoolean: true })).map((e) => e.expression)).toEqual(['Patient.name[0]._family.extension[0].valueBoolean']);
    expect(errorsAt({ resourceType: 'Patient', extension: [{ url: 'http://example.org/fhir/StructureDefinition/anything', valueBoolean: true }] })).toEqual([]);
  });

  test('a code outside R4 copy of a value set of HL7 Terminology, which has grown since, is a warning in an extension', () => {
    const workGroup = { url: 'http://hl7.org/fhir/StructureDefinition/structuredefinition-wg', valueCode: 'not-a-work-group' };
    const issues = validateResource({ resourceType: 'Basic', code: { text: 'x' }, extension: [workGroup] });
    expect(issues.map((i) => [i.severity, i.expression?.[0]])).toEqual([['warning', 'Basic.extension[0].valueCode']]);
  });

  describe('validateReference', () => {
    const parameters = {
      resourceType: 'Parameters',
      parameter: [
        { name: 'patient', resource: { resourceType: 'Patient', id: '1' } },
        {
          name: 'nested',
          part: [
            {
              name: 'coverage',
              resource: {
                resourceType: 'Coverage',
                id: 'c1',
                status: 'active',
                contained: [{ resourceType: 'Organization', id: 'payer', name: 'P' }],
                beneficiary: { reference: 'Patient/2' },
                subscriber: { reference: 'Patient/1' },
                payor: [{ reference: '#payer' }, { identifier: { value: 'x' } }, { reference: 'http://example.org/Organization/9' }],
              },
            },
          ],
        },
      ],
    };

    test('is off by default: an unresolvable reference in a Parameters is not an error', () => {
      expect(errorsAt(parameters)).toEqual([]);
      expect(errorsAt(parameters, { validateReference: 'IGNORE' })).toEqual([]);
    });

    test('CHECK_EXISTS resolves Type/id against parameter (and part) resources; contained, logical and absolute references are left alone', () => {
      expect(errorsAt(parameters, { validateReference: 'CHECK_EXISTS' })).toEqual([
        {
          expression: 'Parameters.parameter[1].part[0].resource.beneficiary',
          code: 'structure',
          text: "Unable to resolve resource with reference 'Patient/2'",
        },
      ]);
    });

    test('in a Bundle, references resolve by fullUrl or Type/id, and _AND_TYPE checks the target type', () => {
      const bundle = {
        resourceType: 'Bundle',
        type: 'collection',
        entry: [
          { fullUrl: 'http://example.org/fhir/Group/1', resource: { resourceType: 'Group', id: '1', type: 'person', actual: true } },
          { fullUrl: 'urn:uuid:04121321-4af5-424c-a0e1-ed3aab1c349d', resource: { resourceType: 'Patient', id: 'p' } },
          {
            fullUrl: 'http://example.org/fhir/Observation/o',
            resource: {
              resourceType: 'Observation',
              id: 'o',
              status: 'final',
              code: { text: 'x' },
              subject: { reference: 'Patient/p' },
              focus: [{ reference: 'Group/1' }, { reference: 'Patient/missing' }],
              performer: [{ reference: 'http://example.org/fhir/Group/1' }, { reference: 'urn:uuid:0c3151bd-1cbf-4d64-b04d-cd9187a4c6e0' }],
            },
          },
        ],
      };
      expect(errorsAt(bundle, { validateReference: 'CHECK_EXISTS' })).toEqual([
        expect.objectContaining({ expression: 'Bundle.entry[2].resource.focus[1]', code: 'structure' }),
      ]);
      expect(errorsAt(bundle, { validateReference: 'CHECK_EXISTS_AND_TYPE' })).toEqual([
        expect.objectContaining({ expression: 'Bundle.entry[2].resource.focus[1]', code: 'structure' }),
        expect.objectContaining({
          expression: 'Bundle.entry[2].resource.performer[0]',
          code: 'structure',
          text: expect.stringContaining('found Group'),
        }),
      ]);
    });
  });

  describe('an extension R4 defines is allowed only where its definition\'s context says', () => {
    const R4 = 'http://hl7.org/fhir/StructureDefinition/';
    const contextErrors = (resource: unknown): (string | undefined)[] =>
      errorsAt(resource)
        .filter((e) => e.text?.includes('is not allowed to be used at this point'))
        .map((e) => e.expression);

    test('by resource type: patient-birthPlace on a Patient, not on an Observation', () => {
      const birthPlace = { url: `${R4}patient-birthPlace`, valueAddress: { city: 'Lyon' } };
      expect(contextErrors({ resourceType: 'Patient', extension: [birthPlace] })).toEqual([]);
      expect(contextErrors({ resourceType: 'Observation', status: 'final', code: { text: 'x' }, extension: [birthPlace] })).toEqual(['Observation.extension[0]']);
    });

    test('by element path: humanname-mothers-family on a family name (_family), not on the HumanName (HL7 validator case maiden-name)', () => {
      const mothers = { url: `${R4}humanname-mothers-family`, valueString: 'Dupont' };
      expect(contextErrors({ resourceType: 'Patient', name: [{ family: 'Martin', _family: { extension: [mothers] } }] })).toEqual([]);
      expect(contextErrors({ resourceType: 'Patient', name: [{ family: 'Martin', extension: [mothers] }] })).toEqual(['Patient.name[0].extension[0]']);
      // Inside a contained Patient, the element is still HumanName.family.
      const contained = { resourceType: 'Observation', status: 'final', code: { text: 'x' }, subject: { reference: '#p' }, contained: [{ resourceType: 'Patient', id: 'p', name: [{ family: 'Martin', _family: { extension: [mothers] } }] }] };
      expect(contextErrors(contained)).toEqual([]);
    });

    test('by the path of a primitive in a resource: patient-birthTime on birthDate, not on gender', () => {
      const birthTime = { url: `${R4}patient-birthTime`, valueDateTime: '1970-01-31T10:15:00+01:00' };
      expect(contextErrors({ resourceType: 'Patient', birthDate: '1970-01-31', _birthDate: { extension: [birthTime] } })).toEqual([]);
      expect(contextErrors({ resourceType: 'Patient', gender: 'female', _gender: { extension: [birthTime] } })).toEqual(['Patient._gender.extension[0]']);
    });

    test('by type and the types it derives from: iso21090-uncertainty on a Quantity and on an Age (a Quantity), not on a Period', () => {
      const uncertainty = { url: `${R4}iso21090-uncertainty`, valueDecimal: 0.5 };
      const observation = (value: Record<string, unknown>): unknown => ({ resourceType: 'Observation', status: 'final', code: { text: 'x' }, ...value });
      expect(contextErrors(observation({ valueQuantity: { value: 5, extension: [uncertainty] } }))).toEqual([]);
      expect(contextErrors({ resourceType: 'Condition', subject: { reference: 'Patient/1' }, onsetAge: { value: 40, system: 'http://unitsofmeasure.org', code: 'a', extension: [uncertainty] } })).toEqual([]);
      expect(contextErrors(observation({ valuePeriod: { start: '2020', extension: [uncertainty] } }))).toEqual(['Observation.valuePeriod.extension[0]']);
    });

    test('Element means anywhere, and a recursive element keeps its path: questionnaire-hidden on items nested three deep', () => {
      const absent = { url: `${R4}data-absent-reason`, valueCode: 'unknown' };
      expect(contextErrors({ resourceType: 'Patient', _birthDate: { extension: [absent] }, name: [{ extension: [absent], family: 'X' }] })).toEqual([]);
      const hidden = { url: `${R4}questionnaire-hidden`, valueBoolean: true };
      const item = (linkId: string, items?: unknown[]): unknown => ({ linkId, type: items ? 'group' : 'string', extension: [hidden], ...(items ? { item: items } : {}) });
      expect(contextErrors({ resourceType: 'Questionnaire', status: 'active', item: [item('1', [item('1.1', [item('1.1.1')])])] })).toEqual([]);
      expect(contextErrors({ resourceType: 'Questionnaire', status: 'active', extension: [hidden] })).toEqual(['Questionnaire.extension[0]']);
    });

    test('context invariants hold on the element the extension sits on, with %extension, an empty result failing (HL7 validator)', () => {
      const invariantErrors = (resource: unknown): (string | undefined)[] =>
        errorsAt(resource)
          .filter((e) => e.text?.includes('context invariant'))
          .map((e) => e.expression);
      const questionnaire = (item: Record<string, unknown>): unknown => ({ resourceType: 'Questionnaire', status: 'active', item: [{ linkId: '1', text: 'q', ...item }] });
      const unit = { url: `${R4}questionnaire-unit`, valueCoding: { system: 'http://unitsofmeasure.org', code: 'kg' } };
      expect(invariantErrors(questionnaire({ type: 'decimal', extension: [unit] }))).toEqual([]);
      expect(invariantErrors(questionnaire({ type: 'string', extension: [unit] }))).toEqual(['Questionnaire.item[0].extension[0]']);
      // Nested items too (context Questionnaire.item.item).
      expect(invariantErrors(questionnaire({ type: 'group', item: [{ linkId: '1.1', type: 'boolean', extension: [unit] }] }))).toEqual(['Questionnaire.item[0].item[0].extension[0]']);
      // type!='display' and (required=true or %extension.valueInteger=0): `required` absent makes the second part empty.
      const minOccurs = (n: number): unknown => ({ url: `${R4}questionnaire-minOccurs`, valueInteger: n });
      expect(invariantErrors(questionnaire({ type: 'string', extension: [minOccurs(0)] }))).toEqual([]);
      expect(invariantErrors(questionnaire({ type: 'string', required: true, extension: [minOccurs(2)] }))).toEqual([]);
      expect(invariantErrors(questionnaire({ type: 'string', extension: [minOccurs(2)] }))).toEqual(['Questionnaire.item[0].extension[0]']);
      const changeBase = { url: `${R4}list-changeBase`, valueReference: { reference: 'List/base' } };
      expect(invariantErrors({ resourceType: 'List', status: 'current', mode: 'changes', extension: [changeBase] })).toEqual([]);
      expect(invariantErrors({ resourceType: 'List', status: 'current', mode: 'working', extension: [changeBase] })).toEqual(['List.extension[0]']);
    });

    // Every HL7 R4 example keeps to its extensions' contexts: hl7-examples.test.ts.
    test('an extension without an R4 definition is not checked here', () => {
      expect(contextErrors({ resourceType: 'Observation', status: 'final', code: { text: 'x' }, extension: [{ url: 'http://example.org/anything', valueString: 'x' }] })).toEqual([]);
    });
  });
});
