import { normalizeText } from './folded-text';

/**
 * Words for `_text` and `_content` (and the query side in text-search-query.ts): runs of
 * letters and digits of the case-, accent- and compatibility-folded text, so `Müller-Lüdenscheidt's` gives `muller`,
 * `ludenscheidt` and `s`. Both sides are split here, in JavaScript, rather than by
 * PostgreSQL's text-search parser: what a query looks for is then exactly what was
 * stored, whatever the database's configuration, and the write pays no parser
 * (`jsonb_to_tsvector` cost ~130 µs per Synthea resource in SQL).
 */
export function textWords(text: string): string[] {
  return foldWords(text).match(WORD) ?? [];
}

/**
 * Case and accents as string search folds them, and compatibility forms too (NFKD: the
 * micro sign `µ` is the Greek `μ`, `ﬁ` is `fi`, full-width digits are digits), which
 * string search's stored columns do not fold; words are only ever compared with words.
 */
function foldWords(text: string): string {
  if (/^[\x20-\x7e]*$/.test(text)) return normalizeText(text);
  return text.normalize('NFKD').replace(/\p{M}/gu, '').toLowerCase();
}

const WORD = /[\p{L}\p{N}]+/gu;

/** PostgreSQL's limits on a tsvector: word positions, positions kept per word, bytes of one word, size of the whole. */
const MAX_POSITION = 16383;
const MAX_POSITIONS_PER_WORD = 256;
const MAX_WORD_BYTES = 2046;
const MAX_VECTOR_BYTES = 900_000;

/**
 * A tsvector literal of the words with their positions (for phrase queries, `<->`),
 * null when there are none; an empty string in `words` only moves the position on. Words are letters and digits only, so none needs quoting
 * beyond the quotes around it. Beyond PostgreSQL's limits the extra positions or words
 * are dropped rather than failing the write.
 */
export function tsvectorLiteral(words: readonly string[]): string | null {
  if (words.length === 0) return null;
  const positions = new Map<string, number[]>();
  let bytes = 0;
  for (let i = 0; i < words.length; i++) {
    const word = words[i];
    // An empty word is a gap between two values (a phrase does not run across it).
    if (word === '') continue;
    const position = Math.min(i + 1, MAX_POSITION);
    const at = positions.get(word);
    if (at) {
      if (at.length < MAX_POSITIONS_PER_WORD && at[at.length - 1] !== position && bytes + 6 <= MAX_VECTOR_BYTES) {
        at.push(position);
        bytes += 6;
      }
      continue;
    }
    const size = Buffer.byteLength(word, 'utf8');
    if (size > MAX_WORD_BYTES || bytes + size + 22 > MAX_VECTOR_BYTES) continue;
    positions.set(word, [position]);
    bytes += size + 22;
  }
  let literal = '';
  for (const [word, at] of positions) literal += `${literal ? ' ' : ''}'${word}':${at.join(',')}`;
  return literal;
}

const ENTITIES: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'", nbsp: ' ' };

/**
 * The text a reader sees in a narrative's XHTML `div`: tags are word breaks, character
 * references are decoded (`&eacute;` style named ones other than XML's five are not
 * allowed in FHIR narrative), comments and attribute values are not text.
 */
export function narrativeText(div: string): string {
  return withoutComments(div)
    .replace(/<[^>]*>/g, ' ')
    .replace(/&(#x[0-9a-fA-F]+|#[0-9]+|[a-zA-Z]+);/g, (whole, ref: string) => {
      if (ref[0] !== '#') return ENTITIES[ref] ?? ' ';
      const code = ref[1] === 'x' ? parseInt(ref.slice(2), 16) : parseInt(ref.slice(1), 10);
      return code > 0 && code <= 0x10ffff ? String.fromCodePoint(code) : ' ';
    });
}

/** `<!-- … -->` removed in one pass (a lazy regex rescans the rest for every unclosed `<!--`). */
function withoutComments(text: string): string {
  if (!text.includes('<!--')) return text;
  let out = '';
  let at = 0;
  for (;;) {
    const open = text.indexOf('<!--', at);
    if (open < 0) return out + text.slice(at);
    out += `${text.slice(at, open)} `;
    const close = text.indexOf('-->', open + 4);
    if (close < 0) return out;
    at = close + 3;
  }
}
