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
  if (!part.includes('|') && !part.includes('\\')) return part;
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
