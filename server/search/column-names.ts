/**
 * Index column names: `__` + the parameter code (lowercased; `-` kept, since columns are
 * always double-quoted) + an optional suffix for a parameter's second column. The `__`
 * prefix keeps them apart from the fixed columns (id, content, ...).
 */
const columnNames = new Map<string, string>();
const suffixedNames = new Map<string, Map<string, string>>();

/** Called for every parameter of every write: names are built once, and looked up without building a key. */
export function paramColumn(code: string, suffix?: string): string {
  if (suffix === undefined) {
    let name = columnNames.get(code);
    if (name === undefined) {
      name = `__${code.toLowerCase()}`;
      columnNames.set(code, name);
    }
    return name;
  }
  let bySuffix = suffixedNames.get(code);
  if (bySuffix === undefined) {
    bySuffix = new Map();
    suffixedNames.set(code, bySuffix);
  }
  let name = bySuffix.get(suffix);
  if (name === undefined) {
    name = `__${code.toLowerCase()}_${suffix}`;
    bySuffix.set(suffix, name);
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
