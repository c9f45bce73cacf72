/** Every relative `Type/id` reference in `node`, walking its JSON (as tests compute what an operation should gather, independently of the server). */
export function jsonReferences(node: unknown, out: string[] = []): string[] {
  if (Array.isArray(node)) node.forEach((n) => jsonReferences(n, out));
  else if (node && typeof node === 'object') {
    for (const [key, value] of Object.entries(node)) {
      if (key === 'reference' && typeof value === 'string' && /^[A-Z][A-Za-z]+\/[^/]+$/.test(value)) out.push(value);
      else jsonReferences(value, out);
    }
  }
  return out;
}
