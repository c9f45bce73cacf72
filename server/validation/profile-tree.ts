import type { ElementDefinition, StructureDefinition } from '@medplum/fhirtypes';
import { resourceDefinitions, typeDefinitions } from './structure-definitions';

/**
 * A profile's elements as a tree (profile-validation.ts walks it beside a resource): its
 * snapshot, or its differential laid over its base's elements, with children by element
 * id and slices under the element they slice. Compiled once per StructureDefinition.
 */

/** Finds a profile by canonical url (with or without `|version`), or undefined when it is not known here. */
export type ProfileResolver = (url: string) => StructureDefinition | undefined;

export interface ProfileNode {
  def: ElementDefinition;
  /** The canonical of the profile the element belongs to, for messages. */
  profile: string;
  /** The element's name in its parent: `coding`, `value[x]`, `valueQuantity`. */
  name: string;
  children: ProfileNode[];
  slices: ProfileNode[];
}

const compiled = new WeakMap<StructureDefinition, ProfileNode | string>();
const MAX_BASE_DEPTH = 12;

let coreByUrl: ReadonlyMap<string, StructureDefinition> | undefined;
function coreDefinition(url: string): StructureDefinition | undefined {
  coreByUrl ??= new Map([...resourceDefinitions, ...typeDefinitions].map((sd) => [sd.url, sd]));
  return coreByUrl.get(url.split('|')[0]);
}

/**
 * A profile's elements: its snapshot, or else its differential laid over its base's
 * elements (as profiling tools such as SUSHI publish them, without a snapshot): an
 * element the differential names by id takes its constraints over the base's; the others
 * (slices, elements inside a datatype) are added. A string says why there are none.
 */
function profileElements(sd: StructureDefinition, resolve: ProfileResolver, depth = 0): ElementDefinition[] | string {
  if (sd.snapshot?.element?.length) return sd.snapshot.element;
  const differential = sd.differential?.element ?? [];
  if (differential.length === 0) return 'it has neither a snapshot nor a differential';
  if (!sd.baseDefinition) return 'it has a differential but no baseDefinition';
  if (depth >= MAX_BASE_DEPTH) return 'its chain of base definitions is too long';
  const base = resolve(sd.baseDefinition) ?? coreDefinition(sd.baseDefinition);
  if (!base) return `its base ${sd.baseDefinition} is not known here`;
  const inherited = profileElements(base, resolve, depth + 1);
  if (typeof inherited === 'string') return `its base ${sd.baseDefinition}: ${inherited}`;
  const elements = [...inherited];
  const position = new Map(elements.map((e, i) => [elementId(e), i]));
  for (const change of differential) {
    const id = elementId(change);
    const at = position.get(id);
    if (at === undefined) {
      position.set(id, elements.length);
      elements.push({ ...change, id });
    } else {
      const before = elements[at];
      elements[at] = { ...before, ...change, id, constraint: [...(before.constraint ?? []), ...(change.constraint ?? [])] };
    }
  }
  return elements;
}

/** An element's id, from its path and slice name when it has none (older differentials). */
function elementId(element: ElementDefinition): string {
  if (element.id) return element.id;
  return element.sliceName ? `${element.path}:${element.sliceName}` : element.path;
}

/** The profile's elements as a tree: children by element id, slices under the element they slice; a string says why it has none. */
export function compile(sd: StructureDefinition, resolve: ProfileResolver): ProfileNode | string {
  const cached = compiled.get(sd);
  if (cached) return cached;
  const elements = profileElements(sd, resolve);
  const tree = typeof elements === 'string' ? elements : buildTree(elements, sd.url);
  compiled.set(sd, tree);
  return tree;
}

function buildTree(elements: readonly ElementDefinition[], url: string): ProfileNode | string {
  const byId = new Map<string, ProfileNode>();
  const rootId = elementId(elements[0]);
  const nodeFor = (id: string, def?: ElementDefinition): ProfileNode | undefined => {
    const known = byId.get(id);
    if (known) {
      if (def) known.def = def;
      return known;
    }
    const segments = id.split('.');
    const last = segments[segments.length - 1];
    const colon = last.indexOf(':');
    // An element inside a datatype that the differential names without its parent: a parent with no constraints of its own.
    const node: ProfileNode = { def: def ?? { id, path: id.replace(/:[^.]*/g, '') }, profile: url, name: colon < 0 ? last : last.slice(0, colon), children: [], slices: [] };
    byId.set(id, node);
    if (id === rootId) return node;
    if (segments.length === 1) return undefined;
    const parentId = segments.slice(0, -1).join('.');
    if (colon < 0) {
      nodeFor(parentId)?.children.push(node);
      return node;
    }
    // A reslice `name:a/b` slices the slice `name:a`.
    const sliceName = last.slice(colon + 1);
    const sliced = sliceName.includes('/') ? `${node.name}:${sliceName.slice(0, sliceName.lastIndexOf('/'))}` : node.name;
    nodeFor(`${parentId}.${sliced}`)?.slices.push(node);
    return node;
  };
  for (const def of elements) nodeFor(elementId(def), def);
  return byId.get(rootId) ?? `StructureDefinition ${url} has no root element`;
}

/** Why a StructureDefinition cannot serve as a profile here (not a constraint, or no elements to check), or undefined. */
export function profileUnusableReason(sd: StructureDefinition, resolve: ProfileResolver): string | undefined {
  if (sd.derivation !== 'constraint') return `it is not a constraint profile (derivation ${sd.derivation ?? 'missing'})`;
  const tree = compile(sd, resolve);
  return typeof tree === 'string' ? tree : undefined;
}

/** Why the profile a canonical names (`url` or `url|version`) cannot be applied: not known here, not that version, or not usable. */
export function canonicalUnusableReason(canonical: string, resolve: ProfileResolver): string | undefined {
  const [, version] = canonical.split('|');
  const sd = resolve(canonical);
  if (!sd) return 'it is not known to this server';
  if (version !== undefined && sd.version !== version) return `this server has version ${sd.version ?? '(none)'}, not ${version}`;
  return profileUnusableReason(sd, resolve);
}
