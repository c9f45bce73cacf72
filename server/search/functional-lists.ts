/**
 * The functional lists of R4 (search.html#list, list.html "Current Resource Lists"):
 * `AllergyIntolerance?patient=42&_list=$current-allergies`. The specification leaves
 * what is "current" to the server; here each list is a search per resource type: active,
 * and never entered in error or refuted. The emergency summary
 * (operations/critical-summary.ts) reads current problems and medications through these
 * same lists. The patient comes from the rest of the query (`patient=`, a compartment),
 * as in the specification's examples; without one, the list spans every patient the
 * principal may see.
 */
type Query = readonly (readonly [key: string, value: string])[];

interface FunctionalList {
  /** As a List (List/$find): its title, and its code in R4's list-example-codes. */
  title: string;
  code: string;
  /** Per resource type the list holds, the search (pairs ANDed) whose matches it is. */
  queries: Readonly<Record<string, Query>>;
}

const NOT_IN_ERROR: Query = [
  ['verification-status:not', 'entered-in-error'],
  ['verification-status:not', 'refuted'],
];

const CURRENT_ALLERGIES: Query = [['clinical-status', 'active'], ...NOT_IN_ERROR];

const FUNCTIONAL_LISTS: Readonly<Record<string, FunctionalList>> = {
  '$current-problems': {
    title: 'Current problems',
    code: 'problems',
    queries: { Condition: [['clinical-status', 'active,recurrence,relapse'], ...NOT_IN_ERROR] },
  },
  '$current-medications': {
    title: 'Current medications',
    code: 'medications',
    queries: { MedicationStatement: [['status', 'active']], MedicationRequest: [['status', 'active']] },
  },
  '$current-allergies': { title: 'Current allergies', code: 'allergies', queries: { AllergyIntolerance: CURRENT_ALLERGIES } },
  '$current-drug-allergies': {
    title: 'Current drug allergies',
    code: 'allergies',
    queries: { AllergyIntolerance: [...CURRENT_ALLERGIES, ['category', 'medication']] },
  },
};

export const FUNCTIONAL_LIST_NAMES: readonly string[] = Object.keys(FUNCTIONAL_LISTS);

/** `_list`'s CapabilityStatement documentation, from the definitions above. */
export const LIST_PARAMETER_DOCUMENTATION =
  'Resources that List/[id] references from List.entry.item; functional lists ' +
  Object.entries(FUNCTIONAL_LISTS)
    .map(([name, list]) => `${name} (${Object.keys(list.queries).join(', ')})`)
    .join(', ') +
  ': active, not entered in error or refuted';

/** The list `name`, or undefined for a list this server does not define. */
export function functionalList(name: string): FunctionalList | undefined {
  return FUNCTIONAL_LISTS[name];
}

/**
 * The search whose matches of `resourceType` are the list `name` (each pair ANDed; an
 * empty query for a type the list holds none of is `null`), or undefined for a list this
 * server does not define.
 */
export function functionalListQuery(name: string, resourceType: string): Query | null | undefined {
  const list = FUNCTIONAL_LISTS[name];
  if (!list) return undefined;
  return list.queries[resourceType] ?? null;
}
