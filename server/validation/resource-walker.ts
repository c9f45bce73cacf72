import type { TypedValue } from '@medplum/core';
import type { OperationOutcomeIssue } from '@medplum/fhirtypes';
import { issue } from '../core/outcome';
import type { IssueCode } from '../core/outcome';
import { bundleProblems } from './bundle-rules';
import { searchParameterProblems } from './search-parameter-rules';
import { containedProblems } from './contained-rules';
import { evaluateInvariant } from './invariants';
import { extensionContextProblem, type ExtensionHost } from './extension-context';
import { officialProfile } from './official-profiles';
import { extensionProblems } from './profile-validation';
import type { InvariantContext } from './invariants';
import { ReferenceResolver } from './reference-resolution';
import { isResourceType } from './structure-definitions';
import { describeJson as describe, isJsonObject } from './json-shape';
import type { JsonObject } from './json-shape';
import { getTypeSchema } from './type-schemas';
import type { Invariant, PropertySchema, TypeSchema } from './type-schemas';
import { codedBindingProblem, datatypeProblems, primitiveProblems } from './value-rules';
import type { ValueProblem } from './value-rules';

/**
 * Walks a parsed JSON value against the compiled R4 schemas and collects issues.
 * Recursion is bounded by MAX_DEPTH so hostile input (10,000 nested arrays) cannot
 * overflow the stack: FHIR resources never come near it (Questionnaire items nested
 * ten deep are about 25 levels).
 */
export const MAX_DEPTH = 100;

interface ResourceScope extends InvariantContext {
  /** ids of the contained resources of the rootResource, for ref-1. */
  containedIds: ReadonlySet<string>;
}

const noIds: ReadonlySet<string> = new Set();

/**
 * Policies of the HL7 Java validator that are off by default; the server runs with the
 * defaults, the validator-case test passes what each case was run with.
 */
export interface ValidationOptions {
  /** Reject strings that look like embedded HTML (Java: security-checks). */
  securityChecks?: boolean;
  /** Reject markdown that contains HTML tags (Java: noHtmlInMarkdown). */
  noHtmlInMarkdown?: boolean;
  /** false skips the content of contained resources (Java: validateContains IGNORE). */
  validateContained?: boolean;
  /** Java: validateReference (IGNORE, CHECK_EXISTS, CHECK_EXISTS_AND_TYPE, ...); see reference-resolution.ts. */
  validateReference?: string;
}

export class ResourceWalker {
  readonly issues: OperationOutcomeIssue[] = [];
  private readonly references: ReferenceResolver;

  constructor(private readonly options: ValidationOptions = {}) {
    this.references = new ReferenceResolver(options.validateReference);
  }

  report(severity: OperationOutcomeIssue['severity'], code: IssueCode, text: string, path: string): void {
    this.issues.push(issue(severity, code, text, path));
  }

  /** Validates a value that should be a resource; `scope` is set for contained resources. */
  walkResource(value: unknown, path: string, depth: number, containerScope?: ResourceScope): void {
    if (!isJsonObject(value)) {
      const at = path || 'Resource';
      this.report('error', 'structure', `Expected a resource (a JSON object), found ${describe(value)}`, at);
      return;
    }
    const resourceType = value.resourceType;
    if (typeof resourceType !== 'string' || !isResourceType(resourceType)) {
      const text =
        typeof resourceType === 'string'
          ? `Unknown resource type '${resourceType}' (this server implements FHIR R4 4.0.1)`
          : 'Missing resourceType';
      this.report('error', 'structure', text, path || 'Resource');
      return;
    }
    const schema = getTypeSchema(resourceType) as TypeSchema;
    const rootPath = path || resourceType;
    const typed: TypedValue = { type: resourceType, value };
    const scope: ResourceScope = containerScope
      ? { resource: typed, rootResource: containerScope.rootResource, containedIds: containerScope.containedIds }
      : { resource: typed, rootResource: typed, containedIds: collectContainedIds(value) };

    this.references.within(value, () => this.walkObject(value, schema, rootPath, depth, scope, { paths: [], type: resourceType }));

    const checkContained = this.options.validateContained !== false;
    if (checkContained && !containerScope && Array.isArray(value.contained) && value.contained.length > 0) {
      for (const [text, at] of containedProblems(value, rootPath)) {
        this.report('error', 'invariant', text, at);
      }
    }
    if (resourceType === 'Bundle') {
      for (const [text, at] of bundleProblems(value, rootPath)) {
        this.report('error', 'invalid', text, at);
      }
    }
    if (resourceType === 'SearchParameter') {
      for (const [text, at] of searchParameterProblems(value, rootPath)) {
        this.report('error', 'business-rule', text, at);
      }
    }
  }

  /** `host` describes the element `obj` is, for the contexts of the extensions it carries. */
  private walkObject(obj: JsonObject, schema: TypeSchema, path: string, depth: number, scope: ResourceScope, host?: ExtensionHost): void {
    if (depth > MAX_DEPTH) {
      this.report('fatal', 'structure', `Content nested deeper than ${MAX_DEPTH} levels is not accepted`, path);
      return;
    }
    let keyCount = 0;
    let choices: Map<string, string> | undefined;
    for (const key in obj) {
      keyCount++;
      if (key === 'resourceType' && schema.isResource) {
        continue;
      }
      const value = obj[key];
      const property = schema.properties.get(key);
      if (!property) {
        this.walkUnknownOrPrimitiveExtension(obj, key, value, schema, path, depth, scope);
        continue;
      }
      if (property.isChoice) {
        choices ??= new Map();
        const other = choices.get(property.elementName);
        if (other) {
          this.report('error', 'structure', `Only one of '${other}' and '${key}' may be present`, `${path}.${key}`);
        }
        choices.set(property.elementName, key);
      }
      this.walkProperty(obj, key, value, property, `${path}.${key}`, depth, scope);
    }
    if (keyCount === 0 || (keyCount === 1 && 'id' in obj && !schema.isResource)) {
      this.report('error', 'structure', 'Elements must have a value or children (ele-1): empty object', path);
    }
    for (const required of schema.requiredElements) {
      if (!required.keys.some((k) => obj[k] !== undefined || obj['_' + k] !== undefined)) {
        this.report(
          'error',
          'required',
          `Missing required element '${required.elementName}' (minimum cardinality ${required.min})`,
          `${path}.${required.elementName}`
        );
      }
    }
    if (schema.invariants.length > 0) {
      this.checkInvariants(schema.invariants, obj, schema.fhirPathType, path, scope, schema);
    }
    if (host) {
      this.checkExtensionContexts(obj, 'extension', host, schema, path, scope);
      this.checkExtensionContexts(obj, 'modifierExtension', host, schema, path, scope);
    }
  }

  /**
   * R4's extensions used where their definition's context does not allow them, or where
   * its context invariants (`contextInvariant`, FHIRPath on the element the extension sits
   * on, with %extension) do not hold: `questionnaire-unit` on an item that is not a number.
   */
  private checkExtensionContexts(obj: JsonObject, key: 'extension' | 'modifierExtension', host: ExtensionHost, schema: TypeSchema, path: string, scope: ResourceScope): void {
    const extensions = obj[key];
    if (!Array.isArray(extensions)) return;
    for (let i = 0; i < extensions.length; i++) {
      const extension = extensions[i];
      const url = isJsonObject(extension) ? extension.url : undefined;
      const definition = typeof url === 'string' ? officialProfile(url) : undefined;
      if (definition?.type !== 'Extension') continue;
      const at = `${path}.${key}[${i}]`;
      const problem = extensionContextProblem(definition, host);
      if (problem) {
        this.report('error', 'structure', problem, at);
        continue;
      }
      for (const expression of definition.contextInvariant ?? []) {
        const context = { ...scope, extension: { type: 'Extension', value: extension } };
        const result = evaluateInvariant({ key: 'contextInvariant', expression, human: expression, source: definition.url }, obj, schema.fhirPathType, context, undefined, false);
        if (result === true) continue;
        const reason = result === false ? '' : ` (${result})`;
        this.report('error', 'invariant', `The extension ${url} is not allowed here: its context invariant '${expression}' is false${reason}`, at);
      }
    }
  }

  private walkUnknownOrPrimitiveExtension(
    obj: JsonObject,
    key: string,
    value: unknown,
    schema: TypeSchema,
    path: string,
    depth: number,
    scope: ResourceScope
  ): void {
    const base = key.startsWith('_') ? schema.properties.get(key.slice(1)) : undefined;
    if (!base || base.kind !== 'primitive') {
      this.report('error', 'structure', `Unknown property '${key}'`, `${path}.${key}`);
      return;
    }
    const elementSchema = getTypeSchema('Element') as TypeSchema;
    const at = `${path}.${key}`;
    // The extensions of a primitive value are on that element (Patient.birthDate, HumanName.family), of its type.
    const host: ExtensionHost = { paths: [base.path], type: base.typeCode };
    if (!base.isArray) {
      if (isJsonObject(value)) {
        this.walkObject(value, elementSchema, at, depth + 1, scope, host);
      } else {
        this.report('error', 'structure', `'${key}' must be a JSON object, found ${describe(value)}`, at);
      }
      return;
    }
    if (!Array.isArray(value)) {
      this.report('error', 'structure', `'${key}' must be a JSON array, found ${describe(value)}`, at);
      return;
    }
    const values = obj[key.slice(1)];
    if (Array.isArray(values) && values.length !== value.length) {
      this.report('error', 'structure', `'${key}' must have as many items as '${key.slice(1)}'`, at);
    }
    for (let i = 0; i < value.length; i++) {
      const item = value[i];
      if (item === null) {
        continue;
      }
      if (isJsonObject(item)) {
        this.walkObject(item, elementSchema, `${at}[${i}]`, depth + 1, scope, host);
      } else {
        this.report('error', 'structure', `Items of '${key}' must be objects or null`, `${at}[${i}]`);
      }
    }
  }

  private walkProperty(
    obj: JsonObject,
    key: string,
    value: unknown,
    property: PropertySchema,
    path: string,
    depth: number,
    scope: ResourceScope
  ): void {
    if (!property.isArray) {
      if (Array.isArray(value)) {
        this.report('error', 'structure', `'${key}' must be a single value, not a JSON array`, path);
      } else if (value === null) {
        if (obj['_' + key] === undefined) {
          this.report('error', 'structure', `'${key}' must not be null`, path);
        }
      } else {
        this.walkValue(value, property, path, depth, scope);
      }
      return;
    }
    if (!Array.isArray(value)) {
      this.report('error', 'structure', `'${key}' must be a JSON array, found ${describe(value)}`, path);
      return;
    }
    if (value.length === 0) {
      this.report('error', 'structure', `Array '${key}' must not be empty (leave the property out instead)`, path);
      return;
    }
    if (value.length > property.max) {
      this.report('error', 'structure', `'${key}' allows at most ${property.max} items, found ${value.length}`, path);
    } else if (value.length < property.min) {
      this.report('error', 'required', `'${key}' needs at least ${property.min} items, found ${value.length}`, path);
    }
    const extensions = property.kind === 'primitive' ? obj['_' + key] : undefined;
    for (let i = 0; i < value.length; i++) {
      const item = value[i];
      const at = `${path}[${i}]`;
      if (item === null) {
        if (!Array.isArray(extensions) || extensions[i] === null || extensions[i] === undefined) {
          this.report('error', 'structure', `Array items must not be null (unless '_${key}' has an item there)`, at);
        }
        continue;
      }
      this.walkValue(item, property, at, depth, scope);
    }
  }

  private walkValue(value: unknown, property: PropertySchema, path: string, depth: number, scope: ResourceScope): void {
    if (property.kind === 'primitive') {
      this.reportAll(primitiveProblems(value, property, path, this.options));
      if (property.invariants.length > 0) {
        this.checkInvariants(property.invariants, value, property.typeCode, path, scope);
      }
      return;
    }
    if (property.kind === 'resource') {
      const contained = property.path.endsWith('.contained');
      if (contained && this.options.validateContained === false) {
        return;
      }
      this.walkResource(value, path, depth + 1, contained ? scope : undefined);
      return;
    }
    if (!isJsonObject(value)) {
      this.report('error', 'structure', `Expected a ${property.typeCode} (a JSON object), found ${describe(value)}`, path);
      return;
    }
    const schema = (property.schema as () => TypeSchema)();
    // A backbone element answers to its own path too (Questionnaire.item for an item nested at Questionnaire.item.item).
    const paths = schema.path !== property.path && schema.path !== property.typeCode ? [property.path, schema.path] : [property.path];
    this.walkObject(value, schema, path, depth + 1, scope, { paths, type: property.typeCode });
    if (property.typeCode === 'Reference') {
      const problem = this.references.check(value, property.targetTypes, scope.rootResource.value);
      if (problem) {
        this.report('error', 'structure', problem, path);
      }
    }
    this.reportAll(datatypeProblems(value, property.typeCode, path, scope.containedIds));
    if (property.typeCode === 'Extension' && typeof value.url === 'string') {
      // An extension R4 defines is checked against its definition (its value's type, its parts), as HL7's validator does.
      const definition = officialProfile(value.url);
      if (definition?.type === 'Extension') {
        this.issues.push(...extensionProblems(value, path, scope.resource.value as JsonObject, definition, officialProfile));
      }
    }
    if (property.requiredValueSet) {
      const problem = codedBindingProblem(value, property, path);
      if (problem) this.reportAll([problem]);
    }
    if (property.invariants.length > 0) {
      const own = property.invariants.filter((inv) => !schema.invariants.some((t) => t.key === inv.key));
      this.checkInvariants(own, value, schema.fhirPathType, path, scope, schema);
    }
  }

  private reportAll(problems: ValueProblem[]): void {
    for (const p of problems) {
      this.report(p.severity, p.code, p.text, p.path);
    }
  }

  private checkInvariants(
    invariants: Invariant[],
    value: unknown,
    fhirPathType: string,
    path: string,
    scope: ResourceScope,
    schema?: TypeSchema
  ): void {
    for (const invariant of invariants) {
      const result = evaluateInvariant(invariant, value, fhirPathType, scope, schema);
      if (result === true) {
        continue;
      }
      const reason = result === false ? '' : ` (${result})`;
      this.report('error', 'invariant', `Constraint ${invariant.key} failed: ${invariant.human}${reason}`, path);
    }
  }
}

function collectContainedIds(resource: JsonObject): ReadonlySet<string> {
  const contained = resource.contained;
  if (!Array.isArray(contained) || contained.length === 0) {
    return noIds;
  }
  const ids = new Set<string>();
  for (const c of contained) {
    if (isJsonObject(c) && typeof c.id === 'string') {
      ids.add(c.id);
    }
  }
  return ids;
}
