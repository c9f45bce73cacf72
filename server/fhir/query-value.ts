/** A query parameter given once or repeated: the last occurrence wins for single-valued ones. */
export function singleValue(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[value.length - 1] : value;
}
