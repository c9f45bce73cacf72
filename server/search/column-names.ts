/**
 * Index column names: `__` + the parameter code (lowercased; `-` kept, since columns are
 * always double-quoted) + an optional suffix for a parameter's second column. The `__`
 * prefix keeps them apart from the fixed columns (id, content, ...).
 */
const columnNames = new Map<string, string>();

/** Called for every parameter of every write: names are built once. */
export function paramColumn(code: string, suffix?: string): string {
  const key = suffix ? `${code} ${suffix}` : code;
  let name = columnNames.get(key);
  if (name === undefined) {
    const base = `__${code.toLowerCase()}`;
    name = suffix ? `${base}_${suffix}` : base;
    columnNames.set(key, name);
  }
  return name;
}

export function quoteIdentifier(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

/** `"alias"."column"` or `"column"`. */
export function qualifiedColumn(name: string, tableAlias?: string): string {
  return tableAlias ? `${quoteIdentifier(tableAlias)}.${quoteIdentifier(name)}` : quoteIdentifier(name);
}
