/**
 * Deepest nesting of objects and arrays in a JSON text. JSON.parse copes with any
 * depth, but JSON.stringify, structuredClone and recursive validation overflow the
 * stack long before 10,000 levels, so deep documents are refused before they are parsed.
 *
 * Runs on every request body (a Synthea transaction is ~2 MB), so the scan jumps with
 * a native search from each opening quote to its closing one: strings are most of the text.
 * Malformed text is left to JSON.parse: an unterminated string simply ends the scan.
 */
export function jsonDepthExceeds(text: string, limit: number): boolean {
  let depth = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22 /* " */) {
      i = closingQuote(text, i);
      if (i < 0) return false;
    } else if (c === 0x7b /* { */ || c === 0x5b /* [ */) {
      if (++depth > limit) return true;
    } else if (c === 0x7d /* } */ || c === 0x5d /* ] */) {
      depth--;
    }
  }
  return false;
}

/** The index of the quote that closes the string opened at `open`, or -1. */
function closingQuote(text: string, open: number): number {
  for (let from = open + 1; ; ) {
    const quote = text.indexOf('"', from);
    if (quote < 0) return -1;
    // Escaped when preceded by an odd number of backslashes.
    let slashes = 0;
    while (text.charCodeAt(quote - 1 - slashes) === 0x5c /* \ */) slashes++;
    if (slashes % 2 === 0) return quote;
    from = quote + 1;
  }
}
