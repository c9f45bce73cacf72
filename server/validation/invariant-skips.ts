/**
 * Invariants not evaluated from their FHIRPath expression, and why. Each is either checked
 * natively elsewhere or is wrong in the published R4 definitions.
 */
export const skippedInvariants: Record<string, string> = {
  'ele-1': 'checked structurally: empty objects, arrays and strings are rejected by the walker',
  'ext-1': 'checked natively (extension or value[x], not both)',
  'ref-1': 'checked natively (a local "#id" reference must name a contained resource)',
  'per-1': 'checked natively (start <= end, comparing at the common precision)',
  'dom-2': 'checked natively (contained resources do not contain resources)',
  'dom-3': 'checked natively (every contained resource is referenced)',
  'dom-4': 'checked natively (contained resources carry no meta.versionId/lastUpdated)',
  'dom-5': 'checked natively (contained resources carry no meta.security)',
  'txt-1': 'checked natively by the narrative XHTML check (htmlChecks() is not implemented by FHIRPath engines)',
  'txt-2': 'checked natively by the narrative XHTML check, as a warning: official examples have empty divs',
  'bdl-7': 'checked natively (fullUrl unique per versionId); the FHIRPath form is quadratic in the entry count',
};
