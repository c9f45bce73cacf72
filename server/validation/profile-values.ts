import type { ElementDefinition } from '@medplum/fhirtypes';
import { isJsonObject, type JsonObject } from './json-shape';
import type { Expansion } from './required-bindings';
import { isPrimitiveType } from './type-schemas';
import type { ProfileNode } from './profile-tree';

/**
 * How profile-validation.ts finds and compares values in a resource's JSON: a profile
 * node's values in their parent (choice types by suffix), a slicing discriminator's path
 * from a value, and the comparisons of fixed[x] (equal) and pattern[x] (holds at least).
 */

/** A value found in the resource, where it was found, and its FHIR type. */
export interface Located {
  value: unknown;
  path: string;
  type: string;
}

/** The values of a child element in a parent object, each with its path and type. */
export function childValues(parent: JsonObject, parentPath: string, node: ProfileNode): Located[] {
  const located: Located[] = [];
  if (node.name.endsWith('[x]')) {
    const prefix = node.name.slice(0, -3);
    for (const key in parent) {
      if (key.length > prefix.length && key.startsWith(prefix) && /[A-Z]/.test(key[prefix.length])) addValues(located, parent, parentPath, key, typeFromSuffix(key.slice(prefix.length)));
    }
  } else {
    addValues(located, parent, parentPath, node.name, node.def.type?.[0]?.code ?? 'Element');
  }
  return located;
}

// Top-level functions, not closures: in hot paths, tsx's keepNames makes each closure cost a defineProperty.
function addValues(located: Located[], parent: JsonObject, parentPath: string, key: string, type: string): void {
  const value = parent[key];
  if (value === undefined || value === null) return;
  if (!Array.isArray(value)) {
    located.push({ value, path: `${parentPath}.${key}`, type: typeOf(value, type) });
    return;
  }
  for (let i = 0; i < value.length; i++) {
    if (value[i] !== null) located.push({ value: value[i], path: `${parentPath}.${key}[${i}]`, type: typeOf(value[i], type) });
  }
}

export function inExpansion(expansion: Expansion, c: { system?: string; code: string }): boolean {
  return c.system ? expansion.pairs.has(`${c.system}|${c.code}`) : expansion.codes.has(c.code);
}

function typeOf(value: unknown, declared: string): string {
  return declared === 'Resource' && isJsonObject(value) && typeof value.resourceType === 'string' ? value.resourceType : declared;
}

function typeFromSuffix(suffix: string): string {
  const lower = suffix[0].toLowerCase() + suffix.slice(1);
  return isPrimitiveType(lower) ? lower : suffix;
}

export function sameType(code: string, type: string): boolean {
  if (code === type) return true;
  if (code === 'Resource') return /^[A-Z]/.test(type);
  // Element types in R4 snapshots are codes; FHIRPath system types (http://hl7.org/fhirpath/System.String) appear on ids and urls.
  const dot = code.lastIndexOf('.');
  return dot >= 0 && code.length - dot - 1 === type.length && code[dot + 1] === type[0].toUpperCase() && code.endsWith(type.slice(1));
}

/** A discriminator path's values, from a value: `$this`, dotted names, `extension('url')`; undefined when unsupported (resolve()). */
export function valuesAt(located: Located, path: string): Located[] | undefined {
  if (path === '$this') return [located];
  const segments = pathSegments(path);
  if (segments === undefined) return undefined;
  let current: Located[] = [located];
  for (const { segment, extensionUrl } of segments) {
    const next: Located[] = [];
    for (const item of current) {
      if (!isJsonObject(item.value)) continue;
      const object = item.value;
      if (extensionUrl !== undefined) {
        for (const e of Array.isArray(object.extension) ? object.extension : []) {
          if (isJsonObject(e) && e.url === extensionUrl) next.push({ value: e, path: `${item.path}.extension`, type: 'Extension' });
        }
        continue;
      }
      const keys = segment in object ? [segment] : Object.keys(object).filter((k) => k.startsWith(segment) && /[A-Z]/.test(k[segment.length] ?? ''));
      for (const key of keys) {
        const type = key === segment ? 'Element' : typeFromSuffix(key.slice(segment.length));
        const value = object[key];
        for (const v of Array.isArray(value) ? value : [value]) next.push({ value: v, path: `${item.path}.${key}`, type });
      }
    }
    current = next;
  }
  return current;
}

const parsedPaths = new Map<string, { segment: string; extensionUrl?: string }[] | undefined>();

/** A discriminator path's steps: element names and `extension('url')`; undefined for what is not supported (resolve(), functions). */
function pathSegments(path: string): { segment: string; extensionUrl?: string }[] | undefined {
  if (parsedPaths.has(path)) return parsedPaths.get(path);
  const segments: { segment: string; extensionUrl?: string }[] = [];
  for (const segment of path.split('.')) {
    const ext = /^extension\('(.*)'\)$/.exec(segment);
    if (ext) segments.push({ segment, extensionUrl: ext[1] });
    else if (/^[A-Za-z][A-Za-z0-9]*$/.test(segment)) segments.push({ segment });
    else {
      parsedPaths.set(path, undefined);
      return undefined;
    }
  }
  parsedPaths.set(path, segments);
  return segments;
}

export function codeOf(value: JsonObject): { system?: string; code: string } {
  return { system: typeof value.system === 'string' ? value.system : undefined, code: typeof value.code === 'string' ? value.code : '' };
}

export function isCode(c: { code: string }): boolean {
  return c.code !== '';
}

export function fhirPathType(def: ElementDefinition, type: string): string {
  if (type !== 'BackboneElement' && type !== 'Element') return type;
  return def.path
    .split('.')
    .map((s) => s.replace('[x]', ''))
    .map((s) => s[0].toUpperCase() + s.slice(1))
    .join('');
}

export function deepEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a === 'number' && typeof b === 'number') return a === b;
  if (Array.isArray(a) && Array.isArray(b)) return a.length === b.length && a.every((x, i) => deepEqual(x, b[i]));
  if (isJsonObject(a) && isJsonObject(b)) {
    const keys = Object.keys(a).filter((k) => a[k] !== undefined);
    return keys.length === Object.keys(b).filter((k) => b[k] !== undefined).length && keys.every((k) => deepEqual(a[k], b[k]));
  }
  return false;
}

/** A pattern matches a value holding at least what it holds (profiling.html: pattern[x]). */
export function includes(value: unknown, pattern: unknown): boolean {
  if (Array.isArray(pattern)) {
    const values = Array.isArray(value) ? value : [value];
    return pattern.every((p) => values.some((v) => includes(v, p)));
  }
  if (isJsonObject(pattern)) {
    return isJsonObject(value) && Object.keys(pattern).every((k) => includes(value[k], pattern[k]));
  }
  return value === pattern;
}
