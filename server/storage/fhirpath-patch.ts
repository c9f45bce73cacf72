import type { Parameters, ParametersParameter, Resource } from '@medplum/fhirtypes';
import fhirpath from 'fhirpath';
import r4Model from 'fhirpath/fhir-context/r4';
import { badRequest, unprocessable } from '../core/outcome';
import { getTypeSchema, type PropertySchema, type TypeSchema } from '../validation/type-schemas';

/**
 * FHIRPath Patch (https://hl7.org/fhir/R4/fhirpatch.html): a Parameters resource whose
 * `operation` parameters add, insert, delete, replace or move elements that FHIRPath
 * expressions select. Applied to a copy; the result goes through the write path's
 * validation like any other content. A malformed document is a 400; an operation that
 * cannot apply to this resource (no element, several, an index out of range) is a 422.
 */
export function applyFhirPathPatch(resource: Resource, patch: Parameters): Resource {
  const result = structuredClone(resource) as unknown as Json;
  (patch.parameter ?? []).forEach((parameter, i) => {
    const where = `Parameters.parameter[${i}]`;
    if (parameter.name !== 'operation') throw badRequest(`A FHIRPath Patch parameter must be named "operation", not "${parameter.name}"`, where);
    applyOperation(result, readOperation(parameter, where), where);
  });
  return result as unknown as Resource;
}

/** Whether a PATCH body is a FHIRPath Patch document rather than a JSON Patch one. */
export function isFhirPathPatch(body: unknown): body is Parameters {
  return typeof body === 'object' && body !== null && (body as { resourceType?: unknown }).resourceType === 'Parameters';
}

type Json = Record<string, unknown>;

interface Operation {
  type: 'add' | 'insert' | 'delete' | 'replace' | 'move';
  path: string;
  name?: string;
  value?: PatchValue;
  index?: number;
  source?: number;
  destination?: number;
}

/** A value from the document: its FHIR type when given as value[x], and how to build it for an element. */
interface PatchValue {
  type?: string;
  build(schema: TypeSchema | undefined): unknown;
}

/** One node of the resource that a path selected: the object holding it, its key and, in a list, its position. */
interface Located {
  holder: Json;
  key: string;
  index: number | null;
  /** The schema of the holder, when the definitions know it. */
  holderSchema?: TypeSchema;
}

function readOperation(parameter: ParametersParameter, where: string): Operation {
  const parts = parameter.part ?? [];
  const part = (name: string): ParametersParameter | undefined => {
    const found = parts.filter((p) => p.name === name);
    if (found.length > 1) throw badRequest(`The operation has ${found.length} "${name}" parts`, where);
    return found[0];
  };
  const type = part('type')?.valueCode;
  if (type !== 'add' && type !== 'insert' && type !== 'delete' && type !== 'replace' && type !== 'move') {
    throw badRequest(`The operation type must be add, insert, delete, replace or move, not ${JSON.stringify(type)}`, `${where}.part`);
  }
  const path = part('path')?.valueString;
  if (!path) throw badRequest(`The ${type} operation needs a path (valueString)`, `${where}.part`);
  const integer = (name: string): number => {
    const value = part(name)?.valueInteger;
    if (!Number.isInteger(value) || (value as number) < 0) throw badRequest(`The ${type} operation needs a non-negative ${name} (valueInteger)`, `${where}.part`);
    return value as number;
  };
  const valued = (): PatchValue => {
    const value = part('value');
    if (!value) throw badRequest(`The ${type} operation needs a value`, `${where}.part`);
    return patchValue(value, `${where}.part`);
  };
  switch (type) {
    case 'add': {
      const name = part('name')?.valueString;
      if (!name) throw badRequest('The add operation needs a name (valueString)', `${where}.part`);
      return { type, path, name, value: valued() };
    }
    case 'insert':
      return { type, path, value: valued(), index: integer('index') };
    case 'replace':
      return { type, path, value: valued() };
    case 'move':
      return { type, path, source: integer('source'), destination: integer('destination') };
    default:
      return { type, path };
  }
}

/** `value[x]` as it is, or an anonymous element built from the value's own parts (fhirpatch.html#value). */
function patchValue(part: ParametersParameter, where: string): PatchValue {
  const key = Object.keys(part).find((k) => k.startsWith('value') && k.length > 5);
  if (key) {
    const raw = (part as unknown as Json)[key];
    const type = key.slice(5);
    return { type: /^[A-Z][a-z]/.test(type) && isPrimitiveName(type) ? type[0].toLowerCase() + type.slice(1) : type, build: () => structuredClone(raw) };
  }
  const parts = part.part;
  if (!parts || parts.length === 0) throw badRequest('A value needs value[x] or parts', where);
  return {
    build(schema) {
      const element: Json = {};
      for (const sub of parts) {
        if (!sub.name) throw badRequest('Each part of a value needs a name', where);
        const value = patchValue(sub, where);
        const property = schema ? propertyFor(schema, sub.name, value.type) : undefined;
        const built = value.build(property?.schema?.());
        const key = property?.key ?? sub.name;
        if (property?.isArray || (property === undefined && key in element)) {
          const list = element[key] === undefined ? [] : Array.isArray(element[key]) ? (element[key] as unknown[]) : [element[key]];
          element[key] = [...list, built];
        } else {
          element[key] = built;
        }
      }
      return element;
    },
  };
}

const PRIMITIVES = new Set([
  'Base64Binary', 'Boolean', 'Canonical', 'Code', 'Date', 'DateTime', 'Decimal', 'Id', 'Instant', 'Integer',
  'Markdown', 'Oid', 'PositiveInt', 'String', 'Time', 'UnsignedInt', 'Uri', 'Url', 'Uuid',
]);

function isPrimitiveName(type: string): boolean {
  return PRIMITIVES.has(type);
}

/** The property of `schema` that element `name` with a value of `type` is stored under (a choice picks its typed key). */
function propertyFor(schema: TypeSchema, name: string, type: string | undefined): PropertySchema | undefined {
  const direct = schema.properties.get(name);
  if (direct && !direct.isChoice) return direct;
  for (const property of schema.properties.values()) {
    if (property.isChoice && property.elementName === name && (type === undefined || property.typeCode === type)) return property;
  }
  return undefined;
}

function applyOperation(resource: Json, op: Operation, where: string): void {
  switch (op.type) {
    case 'add': {
      const holder = single(resource, op.path, where, 'add to');
      const container = holderData(holder);
      if (typeof container !== 'object' || container === null || Array.isArray(container)) {
        throw unprocessable(`The path ${op.path} of the add operation selects a primitive value, not an element that can hold ${op.name}`, where);
      }
      const schema = schemaOfSelected(resource, holder);
      const property = schema ? propertyFor(schema, op.name as string, op.value?.type) : undefined;
      if (schema && !property) throw unprocessable(`${schema.path} has no element ${op.name}${op.value?.type ? ` of type ${op.value.type}` : ''}`, where);
      const key = property?.key ?? (op.name as string);
      const value = (op.value as PatchValue).build(property?.schema?.());
      const target = container as Json;
      if (property?.isArray || Array.isArray(target[key])) {
        target[key] = [...((target[key] as unknown[] | undefined) ?? []), value];
      } else if (target[key] !== undefined) {
        throw unprocessable(`${op.path} already has ${op.name}: add only adds to lists or absent elements (use replace)`, where);
      } else {
        target[key] = value;
      }
      return;
    }
    case 'replace': {
      const located = locate(resource, single(resource, op.path, where, 'replace'), where);
      const property = located.holderSchema ? propertyFor(located.holderSchema, elementName(located), op.value?.type) : undefined;
      if (located.holderSchema && !property) throw unprocessable(`${op.path} cannot hold a value of type ${op.value?.type}`, where);
      const value = (op.value as PatchValue).build(property?.schema?.());
      if (located.index !== null) {
        (located.holder[located.key] as unknown[])[located.index] = value;
      } else if (property && property.key !== located.key) {
        // A choice that changes type changes key: valueQuantity → valueString.
        delete located.holder[located.key];
        delete located.holder[`_${located.key}`];
        located.holder[property.key] = value;
      } else {
        located.holder[located.key] = value;
      }
      return;
    }
    case 'delete': {
      const selected = select(resource, op.path, where);
      if (selected.length === 0) return; // nothing to delete is not an error
      if (selected.length > 1) throw unprocessable(`The path ${op.path} of the delete operation selects ${selected.length} elements; it must select one`, where);
      const located = locate(resource, selected[0], where);
      remove(located);
      return;
    }
    case 'insert': {
      const { list, holder, key, schema } = listAt(resource, op.path, where);
      if ((op.index as number) > list.length) throw unprocessable(`Index ${op.index} is beyond the ${list.length} items of ${op.path}`, where);
      const property = schema?.properties.get(key);
      list.splice(op.index as number, 0, (op.value as PatchValue).build(property?.schema?.()));
      holder[key] = list;
      return;
    }
    case 'move': {
      const { list, holder, key } = listAt(resource, op.path, where);
      const { source, destination } = op as Required<Pick<Operation, 'source' | 'destination'>>;
      if (source >= list.length || destination >= list.length) {
        throw unprocessable(`Source ${source} and destination ${destination} must both be below the ${list.length} items of ${op.path}`, where);
      }
      const [moved] = list.splice(source, 1);
      list.splice(destination, 0, moved);
      holder[key] = list;
      return;
    }
  }
}

/** fhirpath.js's node: the data it selected and how it got there. */
interface PathNode {
  data: unknown;
  parentResNode: PathNode | null;
  propName: string | null;
  index: number | null;
  fhirNodeDataType?: string;
}

function select(resource: Json, path: string, where: string): PathNode[] {
  try {
    return (fhirpath.evaluate(resource, path, {}, r4Model, { resolveInternalTypes: false }) as unknown[]).filter(
      (node): node is PathNode => typeof node === 'object' && node !== null && 'parentResNode' in node
    );
  } catch (err) {
    throw badRequest(`The path ${path} is not a FHIRPath expression this server can evaluate: ${(err as Error).message}`, where);
  }
}

function single(resource: Json, path: string, where: string, verb: string): PathNode {
  const selected = select(resource, path, where);
  if (selected.length !== 1) {
    throw unprocessable(`The path ${path} selects ${selected.length} elements; an operation can only ${verb} exactly one`, where);
  }
  return selected[0];
}

/** The object a node stands for (the resource itself at the root). */
function holderData(node: PathNode): unknown {
  if (!node.parentResNode) return node.data;
  const located = locateIn(node);
  const value = located.holder[located.key];
  return located.index === null ? value : (value as unknown[])[located.index];
}

/** Where a selected node lives: its holder object, its actual JSON key (a choice's typed key) and its list position. */
function locateIn(node: PathNode): { holder: Json; key: string; index: number | null } {
  const holder = holderData(node.parentResNode as PathNode) as Json;
  const name = node.propName as string;
  const type = node.fhirNodeDataType ?? '';
  const typed = `${name}${type.charAt(0).toUpperCase()}${type.slice(1)}`;
  const key = name in holder ? name : typed in holder ? typed : Object.keys(holder).find((k) => k.startsWith(name) && /^[A-Z]/.test(k.slice(name.length)));
  if (key === undefined) throw new Error(`FHIRPath node ${name} not found in its parent`);
  return { holder, key, index: node.index ?? null };
}

function locate(resource: Json, node: PathNode, where: string): Located {
  if (!node.parentResNode) throw unprocessable('An operation cannot replace or delete the resource itself', where);
  const located = locateIn(node);
  return { ...located, holderSchema: schemaOfSelected(resource, node.parentResNode) };
}

function elementName(located: Located): string {
  return located.holderSchema?.properties.get(located.key)?.elementName ?? located.key;
}

/** The schema of the element a node selected, found by walking the definitions from the resource down its keys. */
function schemaOfSelected(resource: Json, node: PathNode): TypeSchema | undefined {
  const chain: PathNode[] = [];
  for (let at: PathNode | null = node; at?.parentResNode; at = at.parentResNode) chain.unshift(at);
  let schema = getTypeSchema(resource.resourceType as string);
  for (const step of chain) {
    if (!schema) return undefined;
    const { key } = locateIn(step);
    const property = schema.properties.get(key);
    if (!property) return undefined;
    if (property.kind === 'resource') {
      const data = holderData(step) as Json | undefined;
      schema = typeof data?.resourceType === 'string' ? getTypeSchema(data.resourceType) : undefined;
    } else {
      schema = property.schema?.();
    }
  }
  return schema;
}

function remove(located: Located): void {
  const { holder, key, index } = located;
  if (index === null) {
    delete holder[key];
    delete holder[`_${key}`];
    return;
  }
  const list = holder[key] as unknown[];
  list.splice(index, 1);
  const extensions = holder[`_${key}`];
  if (Array.isArray(extensions)) extensions.splice(index, 1);
  if (list.length === 0) {
    delete holder[key];
    delete holder[`_${key}`];
  }
}

/**
 * The list an insert or move works on: `path` selects its items (all in one list), or,
 * when it has none yet, `path` is `parent.name` and the list is that element of the parent.
 */
function listAt(resource: Json, path: string, where: string): { list: unknown[]; holder: Json; key: string; schema?: TypeSchema } {
  const items = select(resource, path, where);
  if (items.some((item) => !item.parentResNode)) throw unprocessable(`The path ${path} selects the resource itself, not the items of a list`, where);
  if (items.length > 0) {
    const located = locateIn(items[0]);
    if (items.some((item) => item.index === null || locateIn(item).holder !== located.holder || locateIn(item).key !== located.key)) {
      throw unprocessable(`The path ${path} does not select the items of one list`, where);
    }
    return { list: located.holder[located.key] as unknown[], holder: located.holder, key: located.key, schema: schemaOfSelected(resource, items[0].parentResNode as PathNode) };
  }
  const split = /^(.+)\.([A-Za-z][A-Za-z0-9]*)$/.exec(path);
  if (!split) throw unprocessable(`The path ${path} selects no list`, where);
  const parent = single(resource, split[1], where, 'insert into');
  const holder = holderData(parent);
  if (typeof holder !== 'object' || holder === null || Array.isArray(holder)) throw unprocessable(`The path ${split[1]} selects no element`, where);
  const schema = schemaOfSelected(resource, parent);
  const property = schema?.properties.get(split[2]);
  if (schema && !property?.isArray) throw unprocessable(`${split[2]} is not a list of ${schema.path}`, where);
  return { list: [], holder: holder as Json, key: split[2], schema };
}
