import type { CodeableConcept, Coding, ContactPoint, Identifier } from '@medplum/fhirtypes';
import type { TypedNode } from './compile-path-expression';
import { joinTextValues } from './folded-text';
import { anySystemEntry, ofTypeEntry, systemCodeEntry, systemOnlyEntry } from './token-encoding';

/** Entries for the token array column and texts for the `:text` column of one parameter. */
export interface TokenIndexValues {
  tokens: string[] | null;
  text: string | null;
}

function nonEmpty(s: unknown): s is string {
  // Most values start with a visible character: no trimmed copy needed for those.
  return typeof s === 'string' && s.length > 0 && (s.charCodeAt(0) > 32 || s.trim().length > 0);
}

function addCode(entries: Set<string>, system: unknown, code: unknown): void {
  const hasSystem = nonEmpty(system);
  if (nonEmpty(code)) {
    entries.add(anySystemEntry(code));
    entries.add(systemCodeEntry(hasSystem ? system : '', code));
  }
  if (hasSystem) entries.add(systemOnlyEntry(system));
}

function addCoding(entries: Set<string>, texts: Set<string>, coding: Coding | undefined): void {
  if (!coding || typeof coding !== 'object') return;
  addCode(entries, coding.system, coding.code);
  if (nonEmpty(coding.display)) texts.add(coding.display);
}

function addCodeableConcept(entries: Set<string>, texts: Set<string>, cc: CodeableConcept): void {
  for (const coding of cc.coding ?? []) addCoding(entries, texts, coding);
  if (nonEmpty(cc.text)) texts.add(cc.text);
}

function addIdentifier(entries: Set<string>, texts: Set<string>, id: Identifier): void {
  addCode(entries, id.system, id.value);
  if (nonEmpty(id.value)) {
    for (const t of id.type?.coding ?? []) {
      if (nonEmpty(t.code)) entries.add(ofTypeEntry(t.system ?? '', t.code, id.value));
    }
  }
  // R4: `:text` on an Identifier searches Identifier.type.text.
  if (nonEmpty(id.type?.text)) texts.add(id.type.text);
  for (const t of id.type?.coding ?? []) if (nonEmpty(t.display)) texts.add(t.display);
}

/**
 * R4 token matching per datatype (https://hl7.org/fhir/R4/search.html#token):
 * ContactPoint matches on its value only (its `system` is phone/email, not a URI);
 * code, boolean, id, uri and string values have no system.
 */
export function tokenIndexValues(nodes: readonly TypedNode[]): TokenIndexValues {
  const entries = new Set<string>();
  const texts = new Set<string>();
  for (const node of nodes) {
    const v = node.value;
    switch (node.type) {
      case 'Coding':
        addCoding(entries, texts, v as Coding);
        break;
      case 'CodeableConcept':
        addCodeableConcept(entries, texts, v as CodeableConcept);
        break;
      case 'Identifier':
        addIdentifier(entries, texts, v as Identifier);
        break;
      case 'ContactPoint':
        addCode(entries, undefined, (v as ContactPoint).value);
        break;
      default:
        if (typeof v === 'string' || typeof v === 'boolean' || typeof v === 'number') addCode(entries, undefined, String(v));
    }
  }
  return { tokens: entries.size > 0 ? [...entries] : null, text: joinTextValues(texts) };
}
