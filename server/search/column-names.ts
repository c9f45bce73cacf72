/**
 * Index column names: `__` + the parameter code (lowercased; `-` kept, since columns are
 * always double-quoted) + an optional suffix for a parameter's second column. The `__`
 * prefix keeps them apart from the fixed columns (id, content, ...).
 */
export function paramColumn(code: string, suffix?: string): string {
  const base = `__${code.toLowerCase()}`;
  return suffix ? `${base}_${suffix}` : base;
}

export function quoteIdentifier(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

/** `"alias"."column"` or `"column"`. */
export function qualifiedColumn(name: string, tableAlias?: string): string {
  return tableAlias ? `${quoteIdentifier(tableAlias)}.${quoteIdentifier(name)}` : quoteIdentifier(name);
}
