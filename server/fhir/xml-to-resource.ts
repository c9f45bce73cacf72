import type { Resource } from '@medplum/fhirtypes';
import { SaxesParser, type SaxesTagNS } from 'saxes';
import { badRequest } from '../core/outcome';
import { getTypeSchema, type PropertySchema, type TypeSchema } from '../validation/type-schemas';
import { attributeNames, FHIR_NAMESPACE, holdsResource, primitiveExtension, XHTML_NAMESPACE } from './resource-to-xml';

type Json = Record<string, unknown>;

/** An element being read: the JSON object it becomes and how to read its children. */
interface Frame {
  /** Where in the resource, for messages (`Patient.name.given`). */
  path: string;
  kind: 'resource-root' | 'complex' | 'primitive' | 'resource-wrapper' | 'div';
  schema?: TypeSchema;
  value: Json;
  /** Complex and primitive elements: where the finished value goes. */
  done?: (value: Json) => void;
  /** A resource wrapper (contained, entry.resource): the one resource inside it. */
  resource?: Json;
}

const NUMBER_TYPES = new Set(['integer', 'positiveInt', 'unsignedInt', 'decimal']);
const INTEGER = /^[+-]?\d+$/;
const DECIMAL = /^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?$/;

/**
 * Reads a resource in FHIR's XML representation (https://hl7.org/fhir/R4/xml.html) into
 * its JSON form, typed by the official definitions: value attributes become JSON
 * numbers and booleans where the datatype says so, a primitive's `id` and extensions go
 * to its `_name` twin (arrays kept aligned with nulls), Element.id and Extension.url come
 * from attributes, the narrative's div is kept as the XHTML text it was sent as. What
 * FHIR XML does not allow — a DTD (never processed), an element or attribute the
 * definitions do not know, text between elements, another namespace, an element
 * repeated where one is allowed — is a 400 naming it. Element order is not checked.
 */
export function xmlToResource(xml: string): Resource {
  const steps = readXml(xml);
  for (;;) {
    const step = steps.next();
    if (step.done) return step.value;
  }
}

/**
 * xmlToResource for request bodies: a large document is read a chunk at a time, letting
 * other requests run between chunks (10 MB of XML takes seconds to read, against tens of
 * milliseconds for JSON.parse of the same resource).
 */
export async function xmlToResourceYielding(xml: string): Promise<Resource> {
  const steps = readXml(xml);
  for (;;) {
    const step = steps.next();
    if (step.done) return step.value;
    await new Promise((resolve) => setImmediate(resolve));
  }
}

/** Characters fed to the parser between two yields. */
const CHUNK = 64 * 1024;

function* readXml(xml: string): Generator<undefined, Resource> {
  const parser = new SaxesParser({ xmlns: true, position: true });
  const stack: Frame[] = [];
  let result: Json | undefined;
  /** Inside a narrative div: its depth and where it starts in the text. */
  let div: { depth: number; start: number; frame: Frame } | undefined;
  let tagStart = 0;
  const fail = (text: string): never => {
    throw badRequest(`The XML body is not a FHIR resource: ${text}`);
  };

  parser.on('doctype', () => fail('a DOCTYPE is not allowed in FHIR XML'));
  parser.on('processinginstruction', () => undefined);
  parser.on('opentagstart', () => {
    // The position is just past the tag's name: its '<' is the last one before it.
    tagStart = xml.lastIndexOf('<', parser.position);
  });
  parser.on('text', (text) => {
    if (div) return;
    if (text.trim() !== '') fail(`text "${text.trim().slice(0, 40)}" is not allowed ${stack.length ? `in ${stack[stack.length - 1].path}` : 'outside the resource'}`);
  });
  parser.on('cdata', (text) => {
    if (!div && text.trim() !== '') fail(`a CDATA section is not allowed ${stack.length ? `in ${stack[stack.length - 1].path}` : 'outside the resource'}`);
  });
  parser.on('opentag', (tag) => {
    if (div) {
      div.depth++;
      return;
    }
    const parent = stack[stack.length - 1];
    if (!parent) {
      stack.push(resourceFrame(tag, '', (value) => (result = value)));
      return;
    }
    if (tag.uri !== FHIR_NAMESPACE && !(tag.uri === XHTML_NAMESPACE && tag.local === 'div')) {
      fail(`element ${tag.name} in ${parent.path} is not in the FHIR namespace`);
    }
    if (parent.kind === 'resource-wrapper') {
      if (parent.resource) fail(`${parent.path} holds more than one resource`);
      stack.push(resourceFrame(tag, parent.path, (value) => (parent.resource = value)));
      return;
    }
    if (parent.kind === 'primitive') {
      if (tag.local !== 'extension') fail(`${parent.path} is a primitive: only extension elements may be inside it, not ${tag.local}`);
      stack.push(complexFrame(tag, primitiveExtension(), `${parent.path}.extension`, (value) => push(parent.value, 'extension', value)));
      return;
    }
    const schema = parent.schema as TypeSchema;
    const property = schema.properties.get(tag.local);
    if (!property) fail(`${parent.path}.${tag.local} is not an element of ${schema.path}`);
    const p = property as PropertySchema;
    const path = `${parent.path}.${p.key}`;
    if (!p.isArray && (parent.value[p.key] !== undefined || parent.value[`_${p.key}`] !== undefined)) fail(`${path} appears more than once`);
    if (p.typeCode === 'xhtml') {
      if (tag.uri !== XHTML_NAMESPACE || tag.attributes.xmlns?.value !== XHTML_NAMESPACE) {
        fail(`${path} must be an XHTML div declaring xmlns="${XHTML_NAMESPACE}"`);
      }
      const frame: Frame = { path, kind: 'div', value: parent.value };
      div = { depth: 0, start: tagStart, frame };
      return;
    }
    if (tag.uri !== FHIR_NAMESPACE) fail(`element ${tag.name} in ${parent.path} is not in the FHIR namespace`);
    if (p.kind === 'primitive') stack.push(primitiveFrame(tag, p, path, parent.value));
    else if (holdsResource(p)) {
      noAttributes(tag, path);
      stack.push({ path, kind: 'resource-wrapper', value: {}, done: (value) => (p.isArray ? push(parent.value, p.key, value) : (parent.value[p.key] = value)) });
    } else stack.push(complexFrame(tag, p, path, (value) => (p.isArray ? push(parent.value, p.key, value) : (parent.value[p.key] = value))));
  });
  parser.on('closetag', (tag) => {
    if (div) {
      if (div.depth > 0) {
        div.depth--;
        return;
      }
      div.frame.value.div = xml.slice(div.start, parser.position);
      div = undefined;
      return;
    }
    const frame = stack.pop() as Frame;
    if (frame.kind === 'resource-wrapper') {
      if (!frame.resource) fail(`${frame.path} holds no resource`);
      frame.done?.(frame.resource as Json);
    } else frame.done?.(frame.value);
    void tag;
  });
  parser.on('error', (err) => {
    throw badRequest(`The body is not well-formed XML: ${err.message}`);
  });

  for (let at = 0; at < xml.length; ) {
    let end = Math.min(at + CHUNK, xml.length);
    // Never between the two halves of a surrogate pair.
    if (end < xml.length && xml.charCodeAt(end - 1) >= 0xd800 && xml.charCodeAt(end - 1) <= 0xdbff) end--;
    parser.write(xml.slice(at, end));
    at = end;
    if (at < xml.length) yield undefined;
  }
  parser.close();
  if (!result) throw badRequest('The XML body holds no resource');
  return result as unknown as Resource;

  function resourceFrame(tag: SaxesTagNS, parentPath: string, done: (value: Json) => void): Frame {
    if (tag.uri !== FHIR_NAMESPACE) fail(`the resource element ${tag.name} is not in the FHIR namespace ${FHIR_NAMESPACE}`);
    const schema = getTypeSchema(tag.local);
    if (!schema?.isResource) fail(`${tag.local} is not a FHIR R4 resource type`);
    noAttributes(tag, parentPath ? `${parentPath}.${tag.local}` : tag.local);
    return { path: tag.local, kind: 'resource-root', schema, value: { resourceType: tag.local }, done: (value) => done(finishPrimitiveArrays(value)) };
  }

  function complexFrame(tag: SaxesTagNS, property: PropertySchema, path: string, done: (value: Json) => void): Frame {
    const schema = (property.schema as () => TypeSchema)();
    const value: Json = {};
    const allowed = attributeNames(schema);
    for (const [name, attribute] of Object.entries(tag.attributes)) {
      if (isForeign(name)) continue;
      if (!allowed.has(name)) fail(`${path} has an attribute ${name}, which FHIR does not define`);
      value[name] = attribute.value;
    }
    return { path, kind: 'complex', schema, value, done: (v) => done(finishPrimitiveArrays(v)) };
  }

  /** A primitive: `value` and `id` attributes, extension children; `value` here holds its `_name` twin while it is read. */
  function primitiveFrame(tag: SaxesTagNS, property: PropertySchema, path: string, owner: Json): Frame {
    const twin: Json = {};
    let value: unknown;
    for (const [name, attribute] of Object.entries(tag.attributes)) {
      if (isForeign(name)) continue;
      if (name === 'value') value = typed(attribute.value, property, path);
      else if (name === 'id') twin.id = attribute.value;
      else fail(`${path} has an attribute ${name}, which FHIR does not define`);
    }
    return {
      path,
      kind: 'primitive',
      value: twin,
      done: () => {
        const hasTwin = twin.id !== undefined || twin.extension !== undefined;
        if (value === undefined && !hasTwin) fail(`${path} has neither a value nor extensions`);
        if (property.isArray) {
          // Aligned arrays, filled with null where an item has no value or no twin (finishPrimitiveArrays tidies them).
          const values = (owner[property.key] ??= []) as unknown[];
          const twins = (owner[`_${property.key}`] ??= []) as unknown[];
          values.push(value ?? null);
          twins.push(hasTwin ? twin : null);
        } else {
          if (value !== undefined) owner[property.key] = value;
          if (hasTwin) owner[`_${property.key}`] = twin;
        }
      },
    };
  }

  function typed(text: string, property: PropertySchema, path: string): unknown {
    if (property.typeCode === 'boolean') {
      if (text !== 'true' && text !== 'false') fail(`${path} must be true or false, got "${text}"`);
      return text === 'true';
    }
    if (NUMBER_TYPES.has(property.typeCode)) {
      const ok = property.typeCode === 'decimal' ? DECIMAL.test(text) : INTEGER.test(text);
      if (!ok) fail(`${path} must be a ${property.typeCode}, got "${text}"`);
      return Number(text);
    }
    return text;
  }

  function noAttributes(tag: SaxesTagNS, path: string): void {
    for (const name of Object.keys(tag.attributes)) {
      if (!isForeign(name)) fail(`${path} has an attribute ${name}, which FHIR does not define`);
    }
  }
}

/**
 * Namespace declarations, and attributes in a namespace (FHIR's own have none), such as
 * the `xsi:schemaLocation` HL7's published XML examples carry: not part of the resource.
 */
function isForeign(name: string): boolean {
  return name === 'xmlns' || name.includes(':');
}

function push(owner: Json, key: string, value: unknown): void {
  ((owner[key] ??= []) as unknown[]).push(value);
}

/** A primitive array's value list is left out when no item has a value, its `_` twin when no item has an id or extension. */
function finishPrimitiveArrays(value: Json): Json {
  for (const key of Object.keys(value)) {
    if (!key.startsWith('_') || !Array.isArray(value[key])) continue;
    const name = key.slice(1);
    if ((value[key] as unknown[]).every((t) => t === null)) delete value[key];
    if (Array.isArray(value[name]) && (value[name] as unknown[]).every((v) => v === null)) delete value[name];
  }
  return value;
}
