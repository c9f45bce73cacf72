import { parseScope, type Permission, type ResourceScope } from '../../access/scopes';

/** Whose data a `patient/` scope reaches, in words: "your" or "Jane Doe's". */
export interface ScopeAudience {
  /** The user is the patient in context. */
  self: boolean;
  /** The patient's display name, for a patient chosen by or for someone else. */
  patientName?: string;
}

const OTHER: Record<string, string> = {
  openid: 'Confirm who you are to the app (OpenID Connect sign-in)',
  fhirUser: 'Read your basic profile (fhirUser)',
  profile: 'Read your basic profile (profile)',
  offline_access: 'Stay signed in (offline access): keep access after you close the app, until you revoke it',
  online_access: 'Stay signed in while you use the app (online access)',
  launch: 'Use the context of your EHR session',
  'launch/patient': 'Know which patient is selected',
  'launch/encounter': 'Know which encounter is selected',
};

const VERBS: [Permission, string][] = [
  ['r', 'read'],
  ['s', 'search'],
  ['c', 'create'],
  ['u', 'update'],
  ['d', 'delete'],
];

/** A scope in plain words, e.g. "Read and search your Observations". */
export function describeScope(raw: string, audience: ScopeAudience): string {
  const scope = parseScope(raw);
  if (!scope) return raw;
  if (scope.kind === 'other') return OTHER[scope.raw] ?? scope.raw;
  return describeResourceScope(scope, audience);
}

function describeResourceScope(scope: ResourceScope, audience: ScopeAudience): string {
  const verbs = VERBS.filter(([p]) => scope.permissions.has(p)).map(([, v]) => v);
  const action = capitalize(joinWords(verbs));
  const what = scope.resourceType === '*' ? 'health records of every kind' : pluralize(scope.resourceType);
  const filter = scope.query ? ` (only those matching ${scope.query})` : '';
  switch (scope.context) {
    case 'patient': {
      const owner = audience.self ? 'your' : audience.patientName ? `${audience.patientName}'s` : "the patient's";
      return `${action} ${owner} ${what}${filter}`;
    }
    case 'user':
      return `${action} ${what} that you are allowed to see${filter}`;
    case 'system':
      return `${action} all ${what}${filter}`;
  }
}

function joinWords(words: string[]): string {
  if (words.length <= 1) return words.join('');
  return `${words.slice(0, -1).join(', ')} and ${words[words.length - 1]}`;
}

function capitalize(text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1);
}

function pluralize(type: string): string {
  if (/(s|x|ch|sh)$/.test(type)) return `${type}es`;
  if (/[^aeiou]y$/.test(type)) return `${type.slice(0, -1)}ies`;
  return `${type}s`;
}
