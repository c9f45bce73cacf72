/**
 * How token values are stored in a parameter's `text[]` column, and the same encoding
 * for query values, so that every token search is an array overlap (`&&`) served by
 * the column's GIN index. One value yields several entries:
 *
 *   `code`            any system            (search `code`)
 *   `system|code`     that system           (search `system|code`; system '' → `|code`)
 *   `system|`         any code in system    (search `system|`)
 *   `tsys|tcode|val`  identifier of a type  (search `:of-type`)
 *
 * Parts are escaped (`\` → `\\`, `|` → `\|`), so the number of unescaped `|` tells the
 * forms apart and a `|` inside a code can never fake a system.
 */
export function escapeTokenPart(part: string): string {
  return part.replace(/\\/g, '\\\\').replace(/\|/g, '\\|');
}

export function anySystemEntry(code: string): string {
  return escapeTokenPart(code);
}

/** `system` '' means "no system" (the `|code` search form). */
export function systemCodeEntry(system: string, code: string): string {
  return `${escapeTokenPart(system)}|${escapeTokenPart(code)}`;
}

export function systemOnlyEntry(system: string): string {
  return `${escapeTokenPart(system)}|`;
}

export function ofTypeEntry(typeSystem: string, typeCode: string, value: string): string {
  return `${escapeTokenPart(typeSystem)}|${escapeTokenPart(typeCode)}|${escapeTokenPart(value)}`;
}

/** Separates values in the single-text columns searched with trigram LIKE; stripped from values. */
export const TEXT_SEPARATOR = '\u001f';

/**
 * Case- and accent-insensitive form, for `:text` and string parameters: NFD splits
 * `é` into `e` + a combining mark, which is then dropped.
 */
export function normalizeText(text: string): string {
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
