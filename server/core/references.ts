/** The R4 id datatype inside a reference: https://hl7.org/fhir/R4/datatypes.html#id */
const ID = '[A-Za-z0-9\\-.]{1,64}';
const relative = new Map<string, RegExp>();
const anywhere = new Map<string, RegExp>();

function pattern(cache: Map<string, RegExp>, type: string, prefix: string): RegExp {
  let found = cache.get(type);
  if (!found) cache.set(type, (found = new RegExp(`${prefix}${type}/(${ID})$`)));
  return found;
}

/** The id of a relative literal reference `Type/id` of that type; anything else (absolute, versioned, another type) names nothing. */
export function relativeReferenceId(reference: string | undefined, type: string): string | undefined {
  return reference ? pattern(relative, type, '^').exec(reference)?.[1] : undefined;
}

/**
 * The id of a reference of that type, relative or absolute (`…/Type/id`): for what the
 * server itself issued (a token's fhirUser) or a caller names in an operation parameter,
 * where the base URL in front does not matter.
 */
export function referenceIdAnywhere(reference: string | undefined, type: string): string | undefined {
  return reference ? pattern(anywhere, type, '(?:^|/)').exec(reference)?.[1] : undefined;
}
