import type { CodeSystem, CodeSystemConcept } from '@medplum/fhirtypes';

/**
 * A CodeSystem's concepts by code with their is-a relations: nesting
 * (`concept.concept`, how FHIR's and HL7 v3's code systems state subsumption) and the
 * `parent` / `subsumedBy` / `child` properties (codesystem.html#props) where given.
 */
export interface ConceptIndex {
  readonly concepts: ReadonlyMap<string, CodeSystemConcept>;
  /** Every code below `code` (not itself); empty for an unknown code. */
  descendants(code: string): Set<string>;
  /** Every code above `code` (not itself). */
  ancestors(code: string): Set<string>;
  /** The codes directly above and below `code`. */
  parents(code: string): ReadonlySet<string>;
  children(code: string): ReadonlySet<string>;
}

const PARENT_PROPERTIES = new Set(['parent', 'subsumedBy']);

const indexes = new WeakMap<CodeSystem, ConceptIndex>();

export function conceptIndex(codeSystem: CodeSystem): ConceptIndex {
  let index = indexes.get(codeSystem);
  if (!index) {
    index = buildIndex(codeSystem);
    indexes.set(codeSystem, index);
  }
  return index;
}

function buildIndex(codeSystem: CodeSystem): ConceptIndex {
  const concepts = new Map<string, CodeSystemConcept>();
  const children = new Map<string, Set<string>>();
  const parents = new Map<string, Set<string>>();
  const link = (parent: string, child: string): void => {
    if (parent === child) return;
    if (!children.has(parent)) children.set(parent, new Set());
    if (!parents.has(child)) parents.set(child, new Set());
    children.get(parent)?.add(child);
    parents.get(child)?.add(parent);
  };
  // Iterative: some code systems nest deeply.
  // Depth first, in the order written: the order of an expansion of the whole system.
  const stack: { concept: CodeSystemConcept; parent?: string }[] = (codeSystem.concept ?? []).map((concept) => ({ concept })).reverse();
  while (stack.length > 0) {
    const { concept, parent } = stack.pop() as { concept: CodeSystemConcept; parent?: string };
    if (!concept.code) continue;
    if (!concepts.has(concept.code)) concepts.set(concept.code, concept);
    if (parent) link(parent, concept.code);
    for (const property of concept.property ?? []) {
      if (typeof property.valueCode !== 'string') continue;
      if (PARENT_PROPERTIES.has(property.code as string)) link(property.valueCode, concept.code);
      else if (property.code === 'child') link(concept.code, property.valueCode);
    }
    const children = concept.concept ?? [];
    for (let i = children.length - 1; i >= 0; i--) stack.push({ concept: children[i], parent: concept.code });
  }
  const closure = (edges: Map<string, Set<string>>, code: string): Set<string> => {
    const out = new Set<string>();
    const todo = [...(edges.get(code) ?? [])];
    while (todo.length > 0) {
      const next = todo.pop() as string;
      if (out.has(next) || next === code) continue;
      out.add(next);
      todo.push(...(edges.get(next) ?? []));
    }
    return out;
  };
  return {
    concepts,
    descendants: (code) => closure(children, code),
    ancestors: (code) => closure(parents, code),
    parents: (code) => parents.get(code) ?? new Set(),
    children: (code) => children.get(code) ?? new Set(),
  };
}

/** Retired or inactive (the `status` or `inactive` property). */
export function isInactive(concept: CodeSystemConcept): boolean {
  return (concept.property ?? []).some(
    (p) => (p.code === 'status' && (p.valueCode === 'retired' || p.valueCode === 'inactive')) || (p.code === 'inactive' && p.valueBoolean === true)
  );
}

/** Not for use in data (the `notSelectable` or `abstract` property). */
export function isAbstract(concept: CodeSystemConcept): boolean {
  return (concept.property ?? []).some((p) => (p.code === 'notSelectable' || p.code === 'abstract') && p.valueBoolean === true);
}
