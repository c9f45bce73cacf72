import { grantableScopes, parseScope, type ResourceScope } from '../../server/access/scopes';

const letters = (raw: string): string => [...((parseScope(raw) as ResourceScope).permissions)].join('');

describe('SMART scopes', () => {
  it('reads v1 read, write and * as the v2 letters rs, cud and cruds', () => {
    expect(letters('patient/*.read')).toBe('rs');
    expect(letters('user/Observation.write')).toBe('cud');
    expect(letters('system/*.*')).toBe('cruds');
  });

  it('reads v2 letters in cruds order, each one on its own', () => {
    expect(letters('patient/Observation.rs')).toBe('rs');
    expect(letters('user/Patient.c')).toBe('c');
    expect(letters('system/Encounter.cruds')).toBe('cruds');
    expect(letters('patient/Observation.d')).toBe('d');
  });

  it('keeps a v2 query filter', () => {
    const scope = parseScope('patient/Observation.rs?category=laboratory') as ResourceScope;
    expect(scope).toMatchObject({ context: 'patient', resourceType: 'Observation', query: 'category=laboratory' });
  });

  it.each([
    'patient/Observation.sr',
    'patient/Observation.rr',
    'patient/Observation.x',
    'patient/Observation.',
    'patient/Observation.read?category=laboratory',
    'patient/Observation.rs?',
    'patient/Observation.rs?category=',
    'doctor/Observation.read',
    'patient/observation.read',
    'patient/*.readwrite',
    'Patient/*.read',
    'launch/everything',
    '',
  ])('refuses the malformed scope "%s"', (raw) => {
    expect(parseScope(raw)).toBeUndefined();
  });

  it('knows the launch, identity and token-lifetime scopes', () => {
    for (const raw of ['openid', 'fhirUser', 'profile', 'launch', 'launch/patient', 'launch/encounter', 'offline_access', 'online_access']) {
      expect(parseScope(raw)).toEqual({ kind: 'other', raw });
    }
  });

  it('grants what was asked when a registered scope covers it, and nothing that was not asked', () => {
    expect(grantableScopes(['patient/Observation.rs', 'openid'], ['patient/*.rs', 'openid', 'fhirUser', 'offline_access'])).toEqual([
      'patient/Observation.rs',
      'openid',
    ]);
    expect(grantableScopes(['patient/Observation.read'], ['patient/*.rs'])).toEqual(['patient/Observation.read']);
  });

  it('narrows a wider request to the registered part', () => {
    expect(grantableScopes(['patient/*.cruds'], ['patient/Observation.rs'])).toEqual(['patient/Observation.read']);
    expect(grantableScopes(['system/*.*'], ['system/*.read'])).toEqual(['system/*.read']);
  });

  it('never crosses contexts and drops unknown, malformed and unregistered scopes', () => {
    expect(grantableScopes(['user/*.rs', 'system/*.rs'], ['patient/*.rs'])).toEqual([]);
    expect(grantableScopes(['patient/*.rs', 'bogus', 'patient/*.xyz', 'offline_access'], ['patient/*.rs'])).toEqual(['patient/*.rs']);
  });

  it('keeps a registered query filter on what it grants', () => {
    expect(grantableScopes(['patient/Observation.rs'], ['patient/Observation.rs?category=laboratory'])).toEqual([
      'patient/Observation.rs?category=laboratory',
    ]);
    expect(grantableScopes(['patient/Observation.rs?category=vital-signs'], ['patient/Observation.rs?category=laboratory'])).toEqual([]);
  });
});
