/**
 * The functional lists of R4 (search.html#list, list.html "Current Resource Lists"):
 * `AllergyIntolerance?patient=42&_list=$current-allergies`. The specification leaves
 * what is "current" to the server; here each list is a search per resource type, the same
 * notion of current as the emergency summary (operations/critical-summary.ts): active, and
 * never entered in error or refuted. The patient comes from the rest of the query
 * (`patient=`, a compartment), as in the specification's examples; without one, the
 * list spans every patient the principal may see.
 */
type Query = readonly (readonly [key: string, value: string])[];

const NOT_IN_ERROR: Query = [
  ['verification-status:not', 'entered-in-error'],
  ['verification-status:not', 'refuted'],
];

const CURRENT_ALLERGIES: Query = [['clinical-status', 'active'], ...NOT_IN_ERROR];

const FUNCTIONAL_LISTS: Readonly<Record<string, Readonly<Record<string, Query>>>> = {
  '$current-problems': { Condition: [['clinical-status', 'active,recurrence,relapse'], ...NOT_IN_ERROR] },
  '$current-medications': {
    MedicationStatement: [['status', 'active']],
    MedicationRequest: [['status', 'active']],
  },
  '$current-allergies': { AllergyIntolerance: CURRENT_ALLERGIES },
  '$current-drug-allergies': { AllergyIntolerance: [...CURRENT_ALLERGIES, ['category', 'medication']] },
};

export const FUNCTIONAL_LIST_NAMES: readonly string[] = Object.keys(FUNCTIONAL_LISTS);

/** The resource types list `name` holds, or undefined for a list this server does not define. */
export function functionalListTypes(name: string): string[] | undefined {
  const list = FUNCTIONAL_LISTS[name];
  return list ? Object.keys(list) : undefined;
}

/**
 * The search whose matches of `resourceType` are the list `name` (each pair ANDed; an
 * empty query for a type the list holds none of is `null`), or undefined for a list this
 * server does not define.
 */
export function functionalListQuery(name: string, resourceType: string): Query | null | undefined {
  const list = FUNCTIONAL_LISTS[name];
  if (!list) return undefined;
  return list[resourceType] ?? null;
}
