import { referenceIdAnywhere, relativeReferenceId } from '../../server/core/references';

describe('ids from references', () => {
  it('a relative reference gives its id only for its own type', () => {
    expect(relativeReferenceId('Patient/a-1.b', 'Patient')).toBe('a-1.b');
    expect(relativeReferenceId('Patient/a', 'Organization')).toBeUndefined();
    expect(relativeReferenceId('http://x/fhir/Patient/a', 'Patient')).toBeUndefined();
    expect(relativeReferenceId('Patient/a/_history/2', 'Patient')).toBeUndefined();
    expect(relativeReferenceId('MyPatient/a', 'Patient')).toBeUndefined();
    expect(relativeReferenceId(undefined, 'Patient')).toBeUndefined();
  });

  it('anywhere also takes an absolute URL ending in Type/id, and never a longer type name', () => {
    expect(referenceIdAnywhere('http://x/fhir/Organization/o1', 'Organization')).toBe('o1');
    expect(referenceIdAnywhere('Organization/o1', 'Organization')).toBe('o1');
    expect(referenceIdAnywhere('http://x/fhir/SubOrganization/o1', 'Organization')).toBeUndefined();
    expect(referenceIdAnywhere('Organization/o1?x=1', 'Organization')).toBeUndefined();
    expect(referenceIdAnywhere(`Organization/${'a'.repeat(65)}`, 'Organization')).toBeUndefined();
  });
});
