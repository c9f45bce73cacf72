import { parseSearchRequest } from '../../server/search/parse-search-request';
import { escapeSearchValue, splitUnescaped, unescapeSearchValue } from '../../server/search/search-value-escaping';

/** escapeSearchValue makes any text one search value: what servers build searches from (a value set's URL, a reference) never becomes an OR. */
test('an escaped value comes back whole through splitting and unescaping, whatever separators it holds', () => {
  for (const text of ['a,b', 'http://x.org/ValueSet/y|1.0', '$and', 'back\\slash', 'plain', ',,|$\\']) {
    const escaped = escapeSearchValue(text);
    expect(splitUnescaped(escaped, ',')).toHaveLength(1);
    expect(unescapeSearchValue(escaped)).toBe(text);
  }
});

test('an escaped reference with a comma is one reference filter value, not two', () => {
  const entries = (patient: string): string[] =>
    (parseSearchRequest('Observation', { patient }, { strict: true, defaultCount: 20, maxCount: 100 }).filters[0] as { entries: string[] }).entries;
  // Unescaped, the comma makes two references, Patient/b among them.
  expect(entries('Patient/a,Patient/b')).toContain('Patient/b');
  expect(entries(escapeSearchValue('Patient/a,Patient/b'))).not.toContain('Patient/b');
});
