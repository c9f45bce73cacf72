import type { Resource } from '@medplum/fhirtypes';
import { getTypeSchema, type PropertySchema, type TypeSchema } from '../validation/type-schemas';

export const FHIR_NAMESPACE = 'http://hl7.org/fhir';
export const XHTML_NAMESPACE = 'http://www.w3.org/1999/xhtml';

type Json = Record<string, unknown>;

/**
 * A resource in FHIR's XML representation (https://hl7.org/fhir/R4/xml.html): elements in
 * the order of the official definitions (JSON objects carry none), primitives as `value`
 * attributes with their `id` and extensions from the `_name` twin, Element.id and
 * Extension.url as attributes, contained resources wrapped in their element, and the
 * narrative's XHTML as it was given. A member the definitions do not know cannot be
 * written in XML and is an error, never silently dropped.
 */
export function resourceToXml(resource: Resource, pretty = false): string {
  const out: string[] = ['<?xml version="1.0" encoding="UTF-8"?>'];
  if (pretty) out.push('\n');
  writeResource(out, resource as unknown as Json, pretty ? 0 : -1, true);
  return out.join('');
}

/** Indentation: -1 writes everything on one line. */
function newline(out: string[], depth: number): void {
  if (depth >= 0) out.push('\n', '  '.repeat(depth));
}

function writeResource(out: string[], resource: Json, depth: number, root: boolean): void {
  const type = resource.resourceType;
  const schema = typeof type === 'string' ? getTypeSchema(type) : undefined;
  if (!schema?.isResource) throw new Error(`cannot write XML for a resource of type ${String(type)}`);
  if (depth > 0) newline(out, depth);
  out.push(`<${type}${root ? ` xmlns="${FHIR_NAMESPACE}"` : ''}>`);
  const empty = writeChildren(out, resource, schema, depth, type as string);
  if (!empty) newline(out, depth);
  out.push(`</${type}>`);
}

/** Writes `value`'s elements in definition order; true when it had none. */
function writeChildren(out: string[], value: Json, schema: TypeSchema, depth: number, path: string): boolean {
  const attributes = attributeNames(schema);
  for (const key of Object.keys(value)) {
    const name = key.startsWith('_') ? key.slice(1) : key;
    if (key === 'resourceType' && schema.isResource) continue;
    if (attributes.has(key)) continue;
    if (!schema.properties.has(name) || (key !== name && schema.properties.get(name)?.kind !== 'primitive')) {
      throw new Error(`${path}.${key} is not an element of ${schema.path}: it has no XML form`);
    }
  }
  let empty = true;
  const inner = depth < 0 ? -1 : depth + 1;
  for (const property of schema.properties.values()) {
    if (attributes.has(property.key)) continue;
    const present = value[property.key];
    const twin = property.kind === 'primitive' ? value[`_${property.key}`] : undefined;
    if (present === undefined && twin === undefined) continue;
    empty = false;
    if (property.kind === 'primitive') writePrimitive(out, property, present, twin, inner, path);
    else {
      for (const item of listOf(present)) {
        if (item === null || typeof item !== 'object') throw new Error(`${path}.${property.key} must be an object`);
        if (holdsResource(property)) {
          newline(out, inner);
          out.push(`<${property.key}>`);
          writeResource(out, item as Json, inner < 0 ? -1 : inner + 1, false);
          newline(out, inner);
          out.push(`</${property.key}>`);
        } else {
          writeComplex(out, property, item as Json, inner, `${path}.${property.key}`);
        }
      }
    }
  }
  return empty;
}

function writeComplex(out: string[], property: PropertySchema, value: Json, depth: number, path: string): void {
  const schema = (property.schema as () => TypeSchema)();
  newline(out, depth);
  out.push(`<${property.key}${attributesOf(value, schema)}`);
  const start = out.length;
  out.push('>');
  const empty = writeChildren(out, value, schema, depth, path);
  if (empty) out[start] = '/>';
  else {
    newline(out, depth);
    out.push(`</${property.key}>`);
  }
}

/** An element whose value is a whole resource (contained, Bundle.entry.resource, …): in XML it wraps the resource's own element. */
export function holdsResource(property: PropertySchema): boolean {
  return property.kind === 'resource' || (property.kind === 'complex' && getTypeSchema(property.typeCode)?.isResource === true);
}

/** The members of a type written as XML attributes: Element.id, Extension.url (the definitions' xmlAttr). */
export function attributeNames(schema: TypeSchema): Set<string> {
  if (schema.isResource) return NONE;
  return schema.fhirPathType === 'Extension' ? EXTENSION_ATTRIBUTES : ELEMENT_ATTRIBUTES;
}
const NONE = new Set<string>();
const ELEMENT_ATTRIBUTES = new Set(['id']);
const EXTENSION_ATTRIBUTES = new Set(['id', 'url']);

function attributesOf(value: Json, schema: TypeSchema): string {
  let text = '';
  for (const name of attributeNames(schema)) {
    const v = value[name];
    if (v !== undefined && v !== null) text += ` ${name}="${escapeAttribute(String(v))}"`;
  }
  return text;
}

function writePrimitive(out: string[], property: PropertySchema, present: unknown, twin: unknown, depth: number, path: string): void {
  if (property.typeCode === 'xhtml') {
    if (typeof present !== 'string') throw new Error(`${path}.${property.key} must be a string of XHTML`);
    newline(out, depth);
    out.push(withXhtmlNamespace(present));
    return;
  }
  const values = property.isArray ? listOf(present) : [present];
  const twins = property.isArray ? listOf(twin) : [twin];
  const count = Math.max(values.length, twins.length);
  for (let i = 0; i < count; i++) {
    const v = values[i];
    const t = (twins[i] ?? undefined) as Json | undefined;
    if ((v === undefined || v === null) && !t) continue;
    newline(out, depth);
    out.push(`<${property.key}`);
    if (t && t.id !== undefined && t.id !== null) out.push(` id="${escapeAttribute(String(t.id))}"`);
    if (v !== undefined && v !== null) out.push(` value="${escapeAttribute(String(v))}"`);
    const extensions = t ? listOf(t.extension) : [];
    if (extensions.length === 0) {
      out.push('/>');
      continue;
    }
    out.push('>');
    const extension = primitiveExtension();
    for (const e of extensions) writeComplex(out, extension, e as Json, depth < 0 ? -1 : depth + 1, `${path}._${property.key}.extension`);
    newline(out, depth);
    out.push(`</${property.key}>`);
  }
}

/** The `extension` element of any datatype (Element.extension), for the extensions of primitives. */
export function primitiveExtension(): PropertySchema {
  return (getTypeSchema('Extension') as TypeSchema).properties.get('extension') as PropertySchema;
}

/** A narrative div as given; FHIR requires it in the XHTML namespace, declared on the div in JSON too. */
function withXhtmlNamespace(div: string): string {
  const open = /^\s*<div\b[^>]*>/.exec(div) ?? /^\s*<div\b[^>]*\/>/.exec(div);
  if (open && !/\sxmlns\s*=/.test(open[0])) return div.replace(/^\s*<div\b/, `<div xmlns="${XHTML_NAMESPACE}"`);
  return div.trim();
}

function listOf(value: unknown): unknown[] {
  if (value === undefined || value === null) return [];
  return Array.isArray(value) ? value : [value];
}

/** Attribute values keep their line breaks and tabs (an XML parser would otherwise turn them into spaces). */
export function escapeAttribute(text: string): string {
  return text.replace(/[&<>"\n\r\t]/g, (c) => ATTRIBUTE_ESCAPES[c]);
}
const ATTRIBUTE_ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', '\n': '&#10;', '\r': '&#13;', '\t': '&#9;' };
