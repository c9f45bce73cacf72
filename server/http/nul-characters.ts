import type { Middleware } from 'koa';
import { badRequest } from '../core/outcome';

/**
 * U+0000 in a request. No FHIR value may hold it (R4 datatypes.html#string: nothing below
 * U+0020 but tab and line breaks), and PostgreSQL refuses it in any text, so a NUL that
 * reached a query or a jsonb value was a 500. A request carrying one is a 400 at the edge:
 * in its URL (`%00` in a path or a search value), a form, or JSON (the escape `\u0000`;
 * JSON cannot hold a raw NUL, JSON.parse refuses it).
 */

export const NUL_REFUSAL = 'The request holds the character U+0000 (NUL), which no FHIR value may hold';

export function urlHoldsNul(url: string): boolean {
  return url.includes('%00') || url.includes('\u0000');
}

/** Whether JSON text escapes a NUL: `\u0000` after an even number of backslashes (`\\u0000` is a backslash, then text). */
export function jsonHoldsNul(text: string): boolean {
  for (let at = text.indexOf('\\u0000'); at >= 0; at = text.indexOf('\\u0000', at + 1)) {
    let backslashes = 0;
    while (at - backslashes - 1 >= 0 && text.charCodeAt(at - backslashes - 1) === 92) backslashes++;
    if (backslashes % 2 === 0) return true;
  }
  return false;
}

export function formHoldsNul(form: URLSearchParams): boolean {
  for (const [name, value] of form) if (name.includes('\u0000') || value.includes('\u0000')) return true;
  return false;
}

/** Refuses FHIR requests whose URL holds a NUL (request bodies are checked where they are read). */
export function refuseNulInUrl(): Middleware {
  return async (ctx, next) => {
    if (urlHoldsNul(ctx.url)) throw badRequest(NUL_REFUSAL);
    await next();
  };
}
