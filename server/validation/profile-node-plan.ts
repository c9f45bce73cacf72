import type { ElementDefinition, ElementDefinitionConstraint } from '@medplum/fhirtypes';
import type { ProfileNode } from './profile-tree';
import { resourceDefinitions, typeDefinitions } from './structure-definitions';

/**
 * What the profile walk (profile-validation.ts) applies at each node of a compiled profile,
 * and whether it has to visit the node at all: what an element says beyond the R4 element
 * it derives from. The base validation has checked what R4 itself says.
 */

/** Invariant keys of the base definitions: the base validation evaluates those already. */
let baseKeys: ReadonlySet<string> | undefined;
function isBaseInvariant(key: string): boolean {
  baseKeys ??= new Set(
    [...resourceDefinitions, ...typeDefinitions].flatMap((sd) => (sd.snapshot?.element ?? []).flatMap((e) => (e.constraint ?? []).map((c) => c.key)))
  );
  return baseKeys.has(key);
}

let coreElements: ReadonlyMap<string, ElementDefinition> | undefined;

/** The R4 element an element derives from (its base path), when it is one of R4's resources or datatypes. */
function coreElement(def: ElementDefinition): ElementDefinition | undefined {
  coreElements ??= new Map([...resourceDefinitions, ...typeDefinitions].flatMap((sd) => (sd.snapshot?.element ?? []).map((e) => [e.path, e] as const)));
  return def.base?.path ? coreElements.get(def.base.path) : undefined;
}

/** A binding the base definition already has: the base validation checks it when required (and not at all when weaker). */
function inheritedBinding(def: ElementDefinition): boolean {
  const base = coreElement(def)?.binding;
  return base !== undefined && base.strength === def.binding?.strength && base.valueSet?.split('|')[0] === def.binding?.valueSet?.split('|')[0];
}

/** What checkValue applies at a node, worked out once per node of a compiled profile. */
export interface NodePlan {
  fixed: unknown;
  pattern: unknown;
  /** The profile's own invariants (the base's are evaluated by the base validation). */
  invariants: ElementDefinitionConstraint[];
  /** A required or extensible binding the base definition does not already have. */
  binding: boolean;
  /** Whether the node, its slices or anything below it constrains more than the base definition does. */
  relevant: boolean;
}

const plans = new WeakMap<ProfileNode, NodePlan>();

export function planOf(node: ProfileNode): NodePlan {
  let plan = plans.get(node);
  if (plan) return plan;
  const def = node.def;
  const strength = def.binding?.strength;
  plan = {
    fixed: constrainedValue(def, 'fixed'),
    pattern: constrainedValue(def, 'pattern'),
    invariants: (def.constraint ?? []).filter((c) => c.expression && !isBaseInvariant(c.key)),
    binding: (strength === 'required' || strength === 'extensible') && def.binding?.valueSet !== undefined && !inheritedBinding(def),
    relevant: true,
  };
  plans.set(node, plan);
  let relevant = node.slices.length > 0 || addsToBase(def, plan);
  for (const child of node.children) relevant = planOf(child).relevant || relevant;
  plan.relevant = relevant;
  return plan;
}

/** Whether an element says more than the R4 element it derives from (an element with no R4 base counts as saying more). */
function addsToBase(def: ElementDefinition, plan: NodePlan): boolean {
  if (plan.fixed !== undefined || plan.pattern !== undefined || plan.invariants.length > 0 || plan.binding || def.maxLength !== undefined) return true;
  const base = coreElement(def);
  if (!base) return true;
  if ((def.min ?? 0) > (def.base?.min ?? 0) || cardinalityMax(def.max) < cardinalityMax(def.base?.max)) return true;
  return typeSignature(def) !== typeSignature(base);
}

/** An element's types with their profiles and target profiles, in a comparable form. */
function typeSignature(def: ElementDefinition): string {
  return (def.type ?? [])
    .map((t) => `${t.code}(${[...(t.profile ?? [])].sort().join(' ')})(${[...(t.targetProfile ?? [])].sort().join(' ')})`)
    .sort()
    .join('|');
}

export function cardinalityMax(max: string | undefined): number {
  return max === undefined || max === '*' ? Infinity : Number(max);
}

function constrainedValue(def: ElementDefinition, kind: 'fixed' | 'pattern'): unknown {
  for (const key in def) {
    if (key.startsWith(kind) && /[A-Z]/.test(key[kind.length] ?? '')) return (def as unknown as Record<string, unknown>)[key];
  }
  return undefined;
}
