import type { CodeableConcept, CodeSystem, Coding, ConceptMap, Parameters, StructureDefinition, ValueSet } from '@medplum/fhirtypes';
import { badRequest, issue, notFound, OperationOutcomeError, outcome } from '../core/outcome';
import type { ResourceStore } from '../storage/resource-store';
import { terminologySource } from '../terminology/terminology-source';
import { ExpansionError, type TerminologySource } from '../terminology/value-set-expansion';
import type { OperationInput } from './operation-parameters';

/**
 * What the terminology operations ($expand, $validate-code, $lookup, $subsumes) share:
 * the caller's view of the terminology (stored ValueSets and CodeSystems it may read,
 * then the official R4 ones), which ValueSet or CodeSystem a call names, and its codings.
 */

/** Stored resources through the caller's store (so what it may not read is not used), then the official ones. */
export function callerTerminology(repo: ResourceStore): TerminologySource {
  return terminologySource((type, canonical) => latestByCanonical(repo, type, canonical));
}

/** The latest live resource of a canonical the caller may read. */
export async function latestByCanonical<T extends ValueSet | CodeSystem | ConceptMap | StructureDefinition>(repo: ResourceStore, resourceType: T['resourceType'], canonical: string): Promise<T | undefined> {
  const { resources } = await repo.search({
    resourceType,
    filters: [{ kind: 'uri', code: 'url', entries: [canonical] }],
    sort: [{ code: '_lastUpdated', descending: true }],
    count: 1,
    offset: 0,
    total: 'none',
    warnings: [],
  });
  return resources[0] as T | undefined;
}

/** An ExpansionError as the operation's answer: 404 for what is not here, 400 for what cannot be done here. */
export function expansionFailure(err: unknown): unknown {
  if (!(err instanceof ExpansionError)) return err;
  return new OperationOutcomeError(err.problem === 'not-found' ? 404 : 400, outcome([issue('error', err.problem, err.message)]));
}

/**
 * The ValueSet of an operation on ValueSet: the instance (`ValueSet/[id]/$op`), a
 * `valueSet` resource in the body, or `url` (with `valueSetVersion`, or `url|version`).
 */
export async function namedValueSet(input: OperationInput, id: string | undefined, repo: ResourceStore, source: TerminologySource): Promise<ValueSet> {
  if (id !== undefined) return (await repo.read('ValueSet', id)).resource as ValueSet;
  const given = input.resource('valueSet');
  if (given) {
    if (given.resourceType !== 'ValueSet') throw badRequest(`parameter "valueSet" must be a ValueSet`, 'valueSet');
    return given as ValueSet;
  }
  const url = input.string('url');
  if (!url) throw badRequest('A ValueSet is needed: url (with valueSetVersion), valueSet in a Parameters body, or ValueSet/[id]/$…', 'url');
  const version = input.string('valueSetVersion');
  const canonical = version && !url.includes('|') ? `${url}|${version}` : url;
  const found = await source.valueSet(canonical);
  if (!found) throw notFound(`ValueSet ${canonical} is not known here`);
  return found;
}

/**
 * The CodeSystem of an operation on CodeSystem: the instance, a `codeSystem` resource in
 * the body, or the system named by `urlParameter` (`url` for $validate-code, `system`
 * for $lookup and $subsumes) or by the coding given, with `version`.
 */
export async function namedCodeSystem(
  input: OperationInput,
  id: string | undefined,
  repo: ResourceStore,
  source: TerminologySource,
  urlParameter: string,
  codings: readonly Coding[]
): Promise<CodeSystem> {
  if (id !== undefined) return (await repo.read('CodeSystem', id)).resource as CodeSystem;
  const given = input.resource('codeSystem');
  if (given) {
    if (given.resourceType !== 'CodeSystem') throw badRequest(`parameter "codeSystem" must be a CodeSystem`, 'codeSystem');
    return given as CodeSystem;
  }
  const url = input.string(urlParameter) ?? codings.find((c) => c.system)?.system;
  if (!url) throw badRequest(`A code system is needed: ${urlParameter}, a coding with a system, or CodeSystem/[id]/$…`, urlParameter);
  const version = input.string('version') ?? codings.find((c) => c.version)?.version;
  const found = await source.codeSystem(url, version);
  if (!found) throw notFound(`CodeSystem ${url}${version ? ` version ${version}` : ''} is not known here`);
  return found;
}

/**
 * The codings a $validate-code call asks about: `code` (+ `system`, `display`), a
 * `coding`, or every coding of a `codeableConcept` (valid when one of them is).
 */
export function codingsToValidate(input: OperationInput, systemParameter: string | undefined): { codings: Coding[]; from: string } {
  const codeableConcept: CodeableConcept | undefined = input.codeableConcept('codeableConcept');
  if (codeableConcept) {
    const codings = (codeableConcept.coding ?? []).filter((c) => c.code);
    if (codings.length === 0) throw badRequest('codeableConcept has no coding with a code', 'codeableConcept');
    return { codings, from: 'codeableConcept' };
  }
  const coding = input.coding('coding');
  if (coding) {
    if (!coding.code) throw badRequest('coding has no code', 'coding');
    return { codings: [coding], from: 'coding' };
  }
  const code = input.string('code');
  if (!code) throw badRequest('code, coding or codeableConcept is required', 'code');
  const system = systemParameter ? input.string(systemParameter) : undefined;
  const display = input.string('display');
  const version = input.string(systemParameter === 'system' ? 'systemVersion' : 'version');
  return { codings: [{ code, ...(system ? { system } : {}), ...(display ? { display } : {}), ...(version ? { version } : {}) }], from: 'code' };
}

/** A coding as a message names it. */
export function describe(coding: Coding): string {
  return coding.system ? `${coding.system}#${coding.code}` : `code ${coding.code}`;
}

/** A display given that is not the code's own (case and spacing aside). */
export function displayProblem(coding: Coding, display: string | undefined): string | undefined {
  if (!coding.display || !display) return undefined;
  const fold = (s: string): string => s.trim().replace(/\s+/g, ' ').toLowerCase();
  return fold(coding.display) === fold(display) ? undefined : `the display of ${describe(coding)} is "${display}", not "${coding.display}"`;
}

/** The answer of $validate-code. */
export function validationResult(result: boolean, display?: string, message?: string): Parameters {
  return {
    resourceType: 'Parameters',
    parameter: [
      { name: 'result', valueBoolean: result },
      ...(message ? [{ name: 'message', valueString: message }] : []),
      ...(display ? [{ name: 'display', valueString: display }] : []),
    ],
  };
}
