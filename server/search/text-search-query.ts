import { badRequest } from '../core/outcome';
import { textWords } from './text-search-lexemes';

/**
 * The value of `_text` as a tsquery (R4 search.html#text: "searching multiple words …
 * and logical operations such as AND, OR etc.", e.g. `(bone OR liver) and metastases`):
 *
 *   - words next to each other must all occur (`and` between them is optional);
 *   - `or` between two terms: either; `not` or a leading `-`: must not occur;
 *   - parentheses group; `"heart failure"` is a phrase (the words in that order);
 *   - a trailing `*` matches words that start with it (`metast*`).
 *
 * Operators are case-insensitive; quote one to search for the word itself (`"not"`).
 * Words are split and folded as stored (text-search-lexemes.ts), so `blood-pressure` is the
 * phrase `blood pressure`. A value that has no word (`-`, `()`) is a 400.
 */
export function textQuery(value: string, code: string): string {
  const parser = new QueryParser(tokenize(value, code), code);
  const query = parser.expression();
  if (parser.more()) throw badRequest(`Unexpected '${parser.peekText()}' in ${code} value '${value}'`, code);
  if (!query) throw badRequest(`The ${code} value '${value}' has no word to search for`, code);
  return query;
}

type Token = { kind: 'word'; text: string; prefix: boolean } | { kind: 'phrase'; text: string } | { kind: '(' | ')' | 'or' | 'and' | 'not' };

function tokenize(value: string, code: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  while (i < value.length) {
    const ch = value[i];
    if (/\s/.test(ch)) {
      i++;
    } else if (ch === '(' || ch === ')') {
      tokens.push({ kind: ch });
      i++;
    } else if (ch === '"') {
      const end = value.indexOf('"', i + 1);
      if (end < 0) throw badRequest(`Unclosed quote in ${code} value '${value}'`, code);
      tokens.push({ kind: 'phrase', text: value.slice(i + 1, end) });
      i = end + 1;
    } else if (ch === '-' && (tokens.length === 0 || /[\s(]/.test(value[i - 1]))) {
      tokens.push({ kind: 'not' });
      i++;
    } else {
      let end = i;
      while (end < value.length && !/[\s()"]/.test(value[end])) end++;
      const text = value.slice(i, end);
      const operator = text.toLowerCase();
      if (operator === 'or' || operator === 'and' || operator === 'not') tokens.push({ kind: operator });
      else tokens.push({ kind: 'word', text, prefix: text.endsWith('*') });
      i = end;
    }
  }
  return tokens;
}

/** Recursive descent: or > and (explicit or implied) > not > term. Returns undefined for a part with no word. */
class QueryParser {
  private at = 0;

  constructor(
    private readonly tokens: Token[],
    private readonly code: string
  ) {}

  more(): boolean {
    return this.at < this.tokens.length;
  }

  peekText(): string {
    const token = this.tokens[this.at];
    return 'text' in token ? token.text : token.kind;
  }

  expression(): string | undefined {
    const alternatives: string[] = [];
    for (let afterOr = false; ; afterOr = true) {
      const part = this.conjunction();
      const or = this.tokens[this.at]?.kind === 'or';
      if (!part && (afterOr || or)) throw badRequest(`'or' needs a word on each side in ${this.code}`, this.code);
      if (part) alternatives.push(part);
      if (!or) break;
      this.at++;
    }
    if (alternatives.length === 0) return undefined;
    return alternatives.length === 1 ? alternatives[0] : `( ${alternatives.join(' | ')} )`;
  }

  private conjunction(): string | undefined {
    const parts: string[] = [];
    for (;;) {
      const next = this.tokens[this.at];
      if (!next || next.kind === 'or' || next.kind === ')') break;
      if (next.kind === 'and') {
        this.at++;
        continue;
      }
      const part = this.unary();
      if (part) parts.push(part);
    }
    if (parts.length === 0) return undefined;
    return parts.length === 1 ? parts[0] : `( ${parts.join(' & ')} )`;
  }

  private unary(): string | undefined {
    const token = this.tokens[this.at];
    if (token.kind === 'not') {
      this.at++;
      if (!this.more()) throw badRequest(`Nothing after 'not' in ${this.code}`, this.code);
      const operand = this.unary();
      return operand && `!${operand}`;
    }
    this.at++;
    switch (token.kind) {
      case '(': {
        const inner = this.expression();
        if (this.tokens[this.at]?.kind !== ')') throw badRequest(`Unbalanced parentheses in ${this.code}`, this.code);
        this.at++;
        return inner;
      }
      case ')':
        throw badRequest(`Unbalanced parentheses in ${this.code}`, this.code);
      case 'phrase':
        return phrase(textWords(token.text), false);
      case 'word':
        return phrase(textWords(token.text), token.prefix);
      default:
        // 'or' / 'and' are consumed by the callers before reaching here.
        throw badRequest(`Unexpected '${token.kind}' in ${this.code}`, this.code);
    }
  }
}

/** Words in order as one tsquery operand (`'a' <-> 'b'`); the last one a prefix if asked. */
function phrase(words: string[], prefix: boolean): string | undefined {
  if (words.length === 0) return undefined;
  const operands = words.map((w, i) => `'${w}'${prefix && i === words.length - 1 ? ':*' : ''}`);
  return operands.length === 1 ? operands[0] : `( ${operands.join(' <-> ')} )`;
}
