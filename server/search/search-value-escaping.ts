/**
 * R4 search value escaping (https://hl7.org/fhir/R4/search.html#escaping): `\,` `\|`
 * `\$` `\\` stand for the literal characters; unescaped `,` separates OR values and
 * unescaped `|` / `$` separate parts.
 */
export function splitUnescaped(text: string, separator: string, limit = Infinity): string[] {
  const parts: string[] = [];
  let start = 0;
  for (let i = 0; i < text.length; i++) {
    if (text[i] === '\\') {
      i++;
    } else if (text[i] === separator && parts.length < limit - 1) {
      parts.push(text.slice(start, i));
      start = i + 1;
    }
  }
  parts.push(text.slice(start));
  return parts;
}

export function unescapeSearchValue(text: string): string {
  return text.replace(/\\([\\,|$])/g, '$1');
}

/** The inverse of unescapeSearchValue: `text` as one value of a search parameter, whatever it holds. */
export function escapeSearchValue(text: string): string {
  return text.replace(/[\\,|$]/g, (c) => `\\${c}`);
}
