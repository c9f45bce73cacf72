import { toTypedValue } from '@medplum/core';
import type { ElementDefinition, ElementDefinitionSlicingDiscriminator, OperationOutcomeIssue, StructureDefinition } from '@medplum/fhirtypes';
import { issue, type IssueCode } from '../core/outcome';
import { evaluateInvariant, type InvariantContext } from './invariants';
import { isJsonObject, type JsonObject } from './json-shape';
import { officialProfile } from './official-profiles';
import { expandValueSet } from './required-bindings';
import { compile, type ProfileNode, type ProfileResolver } from './profile-tree';
import { cardinalityMax, planOf } from './profile-node-plan';
import { childValues, codeOf, deepEqual, fhirPathType, includes, inExpansion, isCode, type Located, sameType, valuesAt } from './profile-values';

export { canonicalUnusableReason, profileUnusableReason, type ProfileResolver } from './profile-tree';

/**
 * Validation of a resource against a constraint profile (a StructureDefinition with a
 * snapshot), on top of the base R4 validation (validate-resource.ts), which has already
 * checked structure, types, primitives and the base invariants. What a profile adds is
 * checked here: narrower cardinality, fixed and pattern values, narrower types and
 * reference targets, required bindings, its own invariants, the profiles of its element
 * types (extensions, nested profiles), and slicing with value, pattern, exists, type and
 * profile discriminators (profiling.html#slicing).
 */

const MAX_PROFILE_DEPTH = 24;

/**
 * Invariant results by value path and expression, shared by the profiles checked on one
 * resource: a vital sign's specific profile (bp, bodytemp …) repeats the invariants of
 * the vitalsigns profile it derives from.
 */
type InvariantMemo = Map<string, boolean | string>;

/** The issues of `resource` (found at `path`) against `profile`; `resolve` finds the profiles it refers to. */
export function profileProblems(
  resource: JsonObject,
  profile: StructureDefinition,
  resolve: ProfileResolver,
  path = String(resource.resourceType ?? profile.type),
  memo: InvariantMemo = new Map()
): OperationOutcomeIssue[] {
  const walker = new ProfileWalker(resource, profile, resolve, memo);
  walker.checkResource(resource, profile, path);
  return walker.issues;
}

/** The profiles applied to one resource: each once, with invariant results shared between them. */
export class ProfilesOfOneResource {
  private readonly applied = new Set<string>();
  private readonly memo: InvariantMemo = new Map();

  constructor(
    private readonly resource: JsonObject,
    private readonly path: string,
    private readonly resolve: ProfileResolver,
    /** Where the issues go (in order, beside the caller's own). */
    readonly issues: OperationOutcomeIssue[] = []
  ) {}

  has(url: string): boolean {
    return this.applied.has(url);
  }

  /** Marks a profile as applied without walking it here (one checked by the caller). */
  skip(url: string): void {
    this.applied.add(url);
  }

  apply(sd: StructureDefinition): void {
    if (this.applied.has(sd.url)) return;
    this.applied.add(sd.url);
    this.issues.push(...profileProblems(this.resource, sd, this.resolve, this.path, this.memo));
  }
}

/**
 * The issues of one extension against its definition (an Extension profile: the type of
 * its value, its nested extensions, its fixed url). `resource` is the resource holding it,
 * for the definition's invariants.
 */
export function extensionProblems(extension: JsonObject, path: string, resource: JsonObject, definition: StructureDefinition, resolve: ProfileResolver): OperationOutcomeIssue[] {
  const walker = new ProfileWalker(resource, definition, resolve, new Map());
  walker.checkExtension(extension, path);
  return walker.issues;
}

class ProfileWalker {
  readonly issues: OperationOutcomeIssue[] = [];
  private readonly context: InvariantContext;
  private depth = 0;

  constructor(
    resource: JsonObject,
    private readonly profile: StructureDefinition,
    private readonly resolve: ProfileResolver,
    private readonly memo: InvariantMemo
  ) {
    const typed = toTypedValue(resource);
    this.context = { resource: typed, rootResource: typed };
  }

  checkResource(value: JsonObject, profile: StructureDefinition, path: string): void {
    if (profile.type && value.resourceType !== profile.type && profile.kind === 'resource') {
      this.report('error', 'structure', `The profile ${profile.url} is for ${profile.type}, not ${String(value.resourceType)}`, path);
      return;
    }
    const tree = compile(profile, this.resolve);
    if (typeof tree === 'string') {
      this.report('error', 'not-supported', `The profile ${profile.url} cannot be checked: ${tree}`, path);
      return;
    }
    this.checkValue(tree, { value, path, type: profile.type ?? String(value.resourceType) });
  }

  checkExtension(extension: JsonObject, path: string): void {
    const tree = compile(this.profile, this.resolve);
    if (typeof tree !== 'string') this.checkValue(tree, { value: extension, path, type: 'Extension' });
  }

  private report(severity: OperationOutcomeIssue['severity'], code: IssueCode, text: string, path: string): void {
    if (!this.issues.some((i) => i.diagnostics === text && i.expression?.[0] === path)) this.issues.push(issue(severity, code, text, path));
  }

  private label(node: ProfileNode): string {
    return `${node.def.id ?? node.def.path} (${node.profile})`;
  }

  /** The values of one element (or one slice) of a parent: cardinality, then each value, then its slices. */
  private checkElement(node: ProfileNode, values: Located[], path: string, isSlice: boolean): void {
    const def = node.def;
    const min = def.min ?? 0;
    const max = cardinalityMax(def.max);
    const baseMin = def.base?.min ?? 0;
    const baseMax = cardinalityMax(def.base?.max);
    if ((isSlice || min > baseMin) && values.length < min) {
      this.report('error', 'structure', `${this.label(node)}: minimum required = ${min}, but only found ${values.length}`, path);
    }
    if ((isSlice || max < baseMax) && values.length > max) {
      this.report('error', 'structure', `${this.label(node)}: maximum allowed = ${max}, but found ${values.length}`, path);
    }
    for (const value of values) this.checkValue(node, value);
    if (node.slices.length > 0) this.checkSlices(node, values, path);
  }

  private checkValue(node: ProfileNode, located: Located): void {
    const def = node.def;
    const { value, path } = located;
    const types = def.type ?? [];
    const type = types.find((t) => sameType(t.code, located.type));
    if (types.length > 0 && !type && !(types.length === 1 && (types[0].code === 'BackboneElement' || types[0].code === 'Element'))) {
      this.report('error', 'structure', `${this.label(node)}: type ${located.type} is not allowed here (allowed: ${types.map((t) => t.code).join(', ')})`, path);
      return;
    }
    const plan = planOf(node);
    const fixed = plan.fixed;
    if (fixed !== undefined && !deepEqual(value, fixed)) {
      this.report('error', 'value', `${this.label(node)}: the value must be ${JSON.stringify(fixed)}, found ${JSON.stringify(value)}`, path);
    }
    const pattern = plan.pattern;
    if (pattern !== undefined && !includes(value, pattern)) {
      this.report('error', 'value', `${this.label(node)}: the value must match the pattern ${JSON.stringify(pattern)}, found ${JSON.stringify(value)}`, path);
    }
    if (def.maxLength !== undefined && typeof value === 'string' && value.length > def.maxLength) {
      this.report('error', 'too-long', `${this.label(node)}: longer than ${def.maxLength} characters`, path);
    }
    if (plan.binding && def.binding?.valueSet) {
      this.checkBinding(node, located, def.binding.valueSet, def.binding.strength as 'required' | 'extensible');
    }
    if (located.type === 'Reference' && isJsonObject(value)) this.checkTarget(node, value, types, path);
    for (const constraint of plan.invariants) {
      const memoKey = `${path}\u0000${constraint.key}\u0000${constraint.expression}`;
      let result = this.memo.get(memoKey);
      if (result === undefined) {
        result = evaluateInvariant(
          { key: constraint.key, human: constraint.human ?? '', expression: constraint.expression ?? '', source: def.path },
          value,
          fhirPathType(def, located.type),
          this.context
        );
        this.memo.set(memoKey, result);
      }
      if (result !== true) {
        const reason = typeof result === 'string' ? ` (${result})` : '';
        this.report(constraint.severity === 'warning' ? 'warning' : 'error', 'invariant', `Constraint ${constraint.key} failed: ${constraint.human ?? constraint.expression}${reason} (${node.profile})`, path);
      }
    }
    for (const url of type?.profile ?? []) this.checkTypeProfile(url, located);
    if (isJsonObject(value)) {
      for (const child of node.children) {
        // What the profile leaves as the base defines it, the base validation has checked already.
        if (planOf(child).relevant) this.checkElement(child, childValues(value, path, child), `${path}.${child.name}`, false);
      }
    }
  }

  /** A profile an element's type must conform to (an extension's definition, a datatype or resource profile). */
  private checkTypeProfile(url: string, located: Located): void {
    // Base types, SimpleQuantity and MoneyQuantity are not constraint profiles known here, and the base validation checks
    // every extension against R4's definition of it: those are not checked twice.
    const sd = this.resolve(url.split('|')[0]);
    if (sd?.type === 'Extension' && officialProfile(sd.url) === sd) return;
    const tree = sd ? compile(sd, this.resolve) : undefined;
    if (!sd || !tree || typeof tree === 'string' || this.depth >= MAX_PROFILE_DEPTH) return;
    this.depth++;
    try {
      if (sd.kind === 'resource' && isJsonObject(located.value)) this.checkResource(located.value, sd, located.path);
      else this.checkValue(tree, { ...located, type: sd.type ?? located.type });
    } finally {
      this.depth--;
    }
  }

  private checkBinding(node: ProfileNode, located: Located, valueSet: string, strength: 'required' | 'extensible'): void {
    const expansion = expandValueSet(valueSet.split('|')[0]);
    if (!expansion) return;
    const { value } = located;
    let codes: { system?: string; code: string }[] = [];
    if (typeof value === 'string') codes = [{ code: value }];
    else if (isJsonObject(value) && Array.isArray(value.coding)) codes = value.coding.filter(isJsonObject).map(codeOf).filter(isCode);
    else if (isJsonObject(value)) codes = [codeOf(value)].filter(isCode);
    if (codes.length === 0) return;
    if (!codes.some((c) => inExpansion(expansion, c))) {
      const shown = codes.map((c) => (c.system ? `${c.system}#${c.code}` : c.code)).join(', ');
      // Extensible: a code from elsewhere is allowed when the value set has none suitable, so a warning. On a choice of
      // types (vital signs' component.value[x]) HL7's validator holds a required binding as extensible too.
      // HL7 Terminology (terminology.hl7.org) has added codes since R4 was published, and HL7's validator checks against
      // its current release: a code outside R4's copy of such a value set is a warning.
      const hl7Terminology = [...expansion.systems].every((system) => system.startsWith('http://terminology.hl7.org/'));
      const required = strength === 'required' && (node.def.type?.length ?? 0) <= 1 && !hl7Terminology;
      this.report(required ? 'error' : 'warning', 'code-invalid', `${this.label(node)}: ${shown} is not in the value set ${valueSet}, which the profile ${required ? 'requires' : 'binds (extensible)'}`, located.path);
    }
  }

  private checkTarget(node: ProfileNode, reference: JsonObject, types: ElementDefinition['type'] & object, path: string): void {
    const targets = types.flatMap((t) => t.targetProfile ?? []);
    if (targets.length === 0 || typeof reference.reference !== 'string') return;
    const match = /(?:^|\/)([A-Z][A-Za-z]+)\/[A-Za-z0-9\-.]{1,64}(?:\/_history\/[A-Za-z0-9\-.]{1,64})?$/.exec(reference.reference);
    if (!match) return;
    const allowed = targets.map((t) => this.resolve(t.split('|')[0])?.type ?? t.slice(t.lastIndexOf('/') + 1));
    if (allowed.includes('Resource') || allowed.includes(match[1])) return;
    this.report('error', 'structure', `${this.label(node)}: a reference to ${match[1]} is not allowed here (allowed: ${[...new Set(allowed)].join(', ')})`, path);
  }

  private checkSlices(node: ProfileNode, values: Located[], path: string): void {
    const slicing = node.def.slicing;
    const discriminators = slicing?.discriminator ?? (node.def.type?.[0]?.code === 'Extension' ? [{ type: 'value' as const, path: 'url' }] : []);
    const matched = new Map<ProfileNode, Located[]>(node.slices.map((s) => [s, []]));
    for (const located of values) {
      const found = discriminators.map((d) => valuesAt(located, d.path ?? '$this'));
      const slice = node.slices.find((s) => discriminators.length > 0 && discriminators.every((d, i) => this.matchesDiscriminator(found[i], s, d)));
      if (slice) matched.get(slice)?.push(located);
      else if (slicing?.rules === 'closed') {
        this.report('error', 'structure', `${this.label(node)}: the value matches none of the slices, and the slicing is closed`, located.path);
      }
    }
    for (const slice of node.slices) this.checkElement(slice, matched.get(slice) ?? [], path, true);
  }

  /** Whether a value's `found` values at the discriminator's path (undefined: a path not supported) put it in `slice`. */
  private matchesDiscriminator(found: Located[] | undefined, slice: ProfileNode, discriminator: ElementDefinitionSlicingDiscriminator): boolean {
    if (found === undefined) return false;
    const path = discriminator.path ?? '$this';
    // The elements the path names in the slice, also inside the slices of the elements on the way (code.coding:SBPCode.code).
    const { constraints, expected } = this.discriminated(slice, path);
    const constraint = constraints[0];
    switch (discriminator.type) {
      case 'value':
      case 'pattern': {
        if (!constraint) {
          // An extension slice whose elements the snapshot leaves to the extension's definition.
          const profile = slice.def.type?.[0]?.profile?.[0];
          return path === 'url' && profile !== undefined && found.some((f) => f.value === profile.split('|')[0]);
        }
        if (expected.length > 0) return found.some((f) => expected.some((e) => (e.exact ? deepEqual(f.value, e.value) : includes(f.value, e.value))));
        const valueSet = constraint.def.binding?.strength === 'required' ? constraint.def.binding.valueSet : undefined;
        const expansion = valueSet ? expandValueSet(valueSet.split('|')[0]) : null;
        if (!expansion) return false;
        return found.some((f) => {
          const codes = typeof f.value === 'string' ? [{ code: f.value }] : isJsonObject(f.value) ? [codeOf(f.value)].filter(isCode) : [];
          return codes.some((c) => inExpansion(expansion, c));
        });
      }
      case 'exists': {
        const def = constraint?.def;
        if (!def) return false;
        if ((def.min ?? 0) > 0) return found.length > 0;
        if (def.max === '0') return found.length === 0;
        return true;
      }
      case 'type': {
        const types = (constraint ?? slice).def.type?.map((t) => t.code) ?? [];
        return found.some((f) => types.some((t) => sameType(t, f.type)));
      }
      case 'profile': {
        const profiles = (constraint ?? slice).def.type?.flatMap((t) => [...(t.profile ?? []), ...(t.targetProfile ?? [])]) ?? [];
        return found.some((f) => profiles.some((p) => this.conforms(f, p)));
      }
      default:
        return false;
    }
  }

  /** Whether a value conforms to a profile, without reporting. */
  private conforms(located: Located, url: string): boolean {
    const sd = this.resolve(url.split('|')[0]);
    const tree = sd ? compile(sd, this.resolve) : undefined;
    if (!sd || !tree || typeof tree === 'string' || this.depth >= MAX_PROFILE_DEPTH) return false;
    const inner = new ProfileWalker(this.context.resource.value as JsonObject, sd, this.resolve, this.memo);
    inner.depth = this.depth + 1;
    if (sd.kind === 'resource' && isJsonObject(located.value)) inner.checkResource(located.value, sd, located.path);
    else inner.checkValue(tree, { ...located, type: sd.type ?? located.type });
    return !inner.issues.some((i) => i.severity === 'error');
  }

  /**
   * The elements of a slice that a discriminator path names, with the fixed and pattern
   * values they require. Worked out once per slice and path, unless that meant following a
   * type profile (which another resolver, or a reloaded stored profile, could answer
   * differently).
   */
  private discriminated(slice: ProfileNode, path: string): Discriminated {
    let byPath = discriminatedCache.get(slice);
    const cached = byPath?.get(path);
    if (cached) return cached;
    const followed = { profile: false };
    const constraints = this.nodesAt(slice, path, followed);
    const expected = constraints.flatMap((c) => {
      const { fixed, pattern } = planOf(c);
      return fixed !== undefined ? [{ value: fixed, exact: true }] : pattern !== undefined ? [{ value: pattern, exact: false }] : [];
    });
    const result = { constraints, expected };
    if (!followed.profile) {
      if (!byPath) discriminatedCache.set(slice, (byPath = new Map()));
      byPath.set(path, result);
    }
    return result;
  }

  /** The elements of a slice that a discriminator path names, following slices and type profiles where the snapshot stops. */
  private nodesAt(slice: ProfileNode, path: string, followed: { profile: boolean }): ProfileNode[] {
    if (path === '$this') return [slice];
    let current: ProfileNode[] = [slice];
    for (const segment of path.split('.')) {
      const url = /^extension\('(.*)'\)$/.exec(segment)?.[1];
      const name = url === undefined ? segment : 'extension';
      const next: ProfileNode[] = [];
      for (const node of current) {
        let children = node.children;
        if (!children.some((c) => c.name === name || c.name === `${name}[x]`)) {
          const profile = node.def.type?.[0]?.profile?.[0];
          followed.profile ||= profile !== undefined;
          const sd = profile ? this.resolve(profile.split('|')[0]) : undefined;
          const tree = sd ? compile(sd, this.resolve) : undefined;
          if (tree && typeof tree !== 'string') children = tree.children;
        }
        for (const child of children) {
          if (child.name !== name && child.name !== `${name}[x]`) continue;
          // extension('url'): the slice of the extensions with that url.
          if (url !== undefined) next.push(...child.slices.filter((s) => s.def.type?.[0]?.profile?.some((p) => p.split('|')[0] === url)));
          else next.push(child, ...child.slices);
        }
      }
      current = next;
    }
    return current;
  }
}

interface Discriminated {
  constraints: ProfileNode[];
  expected: { value: unknown; exact: boolean }[];
}

const discriminatedCache = new WeakMap<ProfileNode, Map<string, Discriminated>>();
