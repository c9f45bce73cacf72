/**
 * Narrative.div rules (R4 narrative.html#xhtml, invariants txt-1 and txt-2), checked with a
 * tag scan rather than an XML parser: the point is to refuse active content and
 * non-XHTML, not to round-trip the markup.
 */

const XHTML_NAMESPACE = 'http://www.w3.org/1999/xhtml';

/** The "basic html formatting elements" of R4 narrative.html. */
const allowedElements = new Set(
  (
    'a abbr acronym address b bdo big blockquote br caption cite code col colgroup dd dfn div dl dt em ' +
    'h1 h2 h3 h4 h5 h6 hr i img li ol p pre q samp small span strong sub sup table tbody td tfoot th ' +
    'thead tr tt ul var kbd map area del ins s strike u font center'
  ).split(' ')
);

/** XML predefined entities; anything else (e.g. `&reg;`) is not XHTML without a DTD. */
const allowedEntities = new Set(['lt', 'gt', 'amp', 'quot', 'apos']);

const tagPattern = /<\s*(\/?)\s*([A-Za-z][\w:.-]*)([^>]*)>/g;
const entityPattern = /&([^;\s&]{0,32});/g;
const eventAttribute = /\son[a-z]+\s*=/i;
const scriptUrl = /(href|src)\s*=\s*["']\s*javascript:/i;

export interface NarrativeProblem {
  severity: 'error' | 'warning';
  text: string;
}

/** Problems with a narrative div (empty when it is fine). */
export function narrativeProblems(div: string): NarrativeProblem[] {
  const problems: NarrativeProblem[] = [];
  const trimmed = div.trimStart();
  if (!/^<div[\s>]/.test(trimmed)) {
    problems.push({ severity: 'error', text: 'The narrative must be an XHTML <div> element' });
    return problems;
  }
  const rootTag = /^<div([^>]*)>/.exec(trimmed);
  if (!rootTag || !rootTag[1].includes(XHTML_NAMESPACE)) {
    problems.push({ severity: 'error', text: `The narrative <div> must declare the XHTML namespace (${XHTML_NAMESPACE})` });
  }
  let hasImage = false;
  for (const match of div.matchAll(tagPattern)) {
    const name = match[2].toLowerCase();
    if (!allowedElements.has(name)) {
      problems.push({ severity: 'error', text: `Element <${match[2]}> is not allowed in narrative (txt-1)` });
    }
    if (eventAttribute.test(match[3]) || scriptUrl.test(match[3])) {
      problems.push({ severity: 'error', text: `Active content in attributes of <${match[2]}> is not allowed in narrative (txt-1)` });
    }
    hasImage ||= name === 'img';
  }
  for (const match of div.matchAll(entityPattern)) {
    const entity = match[1];
    if (!allowedEntities.has(entity) && !/^#([0-9]+|x[0-9A-Fa-f]+)$/.test(entity)) {
      problems.push({ severity: 'error', text: `Invalid entity '&${entity};' in the narrative XHTML` });
    }
  }
  const text = div.replace(tagPattern, '').trim();
  if (!text && !hasImage) {
    // txt-2 is a warning here: several official examples (accepted by the reference
    // validator) have a whitespace-only div.
    problems.push({ severity: 'warning', text: 'The narrative should have some non-whitespace content (txt-2)' });
  }
  return problems;
}
