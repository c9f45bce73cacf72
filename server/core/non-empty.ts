/**
 * `{ [name]: values }` to spread into a resource, or nothing when there are no values:
 * FHIR JSON has no empty arrays (json.html), and our own $validate rejects them.
 */
export function nonEmpty<K extends string, T>(name: K, values: T[]): { [P in K]?: T[] } {
  return (values.length > 0 ? { [name]: values } : {}) as { [P in K]?: T[] };
}
