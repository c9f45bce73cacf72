/**
 * Folded text columns, for string parameters and token `:text`: all the text values of a
 * parameter, case- and accent-folded, in one column, each preceded by a separator, so
 * that "some value starts with x" is `LIKE '%<sep>x%'` and "contains" is `LIKE '%x%'`,
 * both served by a trigram GIN index (pg_trgm) instead of scanning arrays.
 */
/** Separates values in the single-text columns searched with trigram LIKE; stripped from values. */
export const TEXT_SEPARATOR = '\u001f';

/**
 * Case- and accent-insensitive form, for `:text` and string parameters: NFD splits
 * `é` into `e` + a combining mark, which is then dropped.
 */
export function normalizeText(text: string): string {
  // Most text is ASCII: lowercasing is all it needs, and NFD is the expensive part.
  if (/^[\x20-\x7e]*$/.test(text)) return text.toLowerCase();
  return text
    .normalize('NFD')
    .replace(/\p{M}/gu, '')
    .toLowerCase()
    .replace(/\u001f/g, ' ');
}

/** The single-text column value: every value preceded by the separator (so `LIKE '%\x1fabc%'` is starts-with). */
export function joinTextValues(values: Iterable<string>): string | null {
  let joined = '';
  for (const v of values) joined += TEXT_SEPARATOR + normalizeText(v);
  return joined.length > 0 ? joined + TEXT_SEPARATOR : null;
}

/** Escapes `%`, `_` and `\` for a LIKE pattern (PostgreSQL's default escape is `\`). */
export function escapeLike(text: string): string {
  return text.replace(/[\\%_]/g, (c) => `\\${c}`);
}
