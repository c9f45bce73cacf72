import type { OperationOutcomeIssue } from '@medplum/fhirtypes';
import type { IssueCode } from '../core/outcome';
import { attachmentSizeProblem, codingSystemProblem } from './datatype-rules';
import { extensionHasValueOrExtensions, localReferenceResolves, periodIsOrdered } from './invariants';
import { isJsonObject } from './json-shape';
import type { JsonObject } from './json-shape';
import { narrativeProblems } from './narrative-xhtml';
import { primitiveFormatError } from './primitive-formats';
import { expandValueSet } from './required-bindings';
import type { PropertySchema } from './type-schemas';

/**
 * The checks on one value, once the walker has found where it sits and what type it has:
 * a primitive's content, the datatype rules that are code rather than FHIRPath, and
 * required bindings. The walker owns traversal and cardinality; these own the values.
 */

export interface ValueProblem {
  severity: OperationOutcomeIssue['severity'];
  code: IssueCode;
  text: string;
  path: string;
}

/** Content checks the HL7 Java validator leaves off by default (security-checks, noHtmlInMarkdown). */
export interface ContentPolicies {
  securityChecks?: boolean;
  noHtmlInMarkdown?: boolean;
}

const htmlTag = /<\/?[A-Za-z][^>]*>/;

/** A primitive's lexical form, optional HTML policies, its narrative rules and its required code. */
export function primitiveProblems(value: unknown, property: PropertySchema, path: string, policies: ContentPolicies): ValueProblem[] {
  const format = primitiveFormatError(property.typeCode, value);
  if (format) {
    return [{ severity: 'error', code: 'value', text: format, path }];
  }
  const problems: ValueProblem[] = [];
  const typeCode = property.typeCode;
  if ((policies.securityChecks && typeCode === 'string') || (policies.noHtmlInMarkdown && typeCode === 'markdown')) {
    if (htmlTag.test(value as string)) {
      problems.push({ severity: 'error', code: 'security', text: `The ${typeCode} contains what looks like an HTML tag`, path });
    }
  }
  if (typeCode === 'xhtml') {
    for (const problem of narrativeProblems(value as string)) {
      problems.push({ severity: problem.severity, code: 'invariant', text: problem.text, path });
    }
  }
  if (property.requiredValueSet && typeof value === 'string') {
    const expansion = expandValueSet(property.requiredValueSet);
    if (expansion && !expansion.codes.has(value)) {
      const text = `The code '${value}' is not in the required value set ${property.requiredValueSet}`;
      problems.push({ severity: 'error', code: 'code-invalid', text, path });
    }
  }
  return problems;
}

/**
 * The datatype constraints checked natively because they are hot (every Reference,
 * Extension, Period) or not written as FHIRPath (Coding.system, Attachment.size).
 */
export function datatypeProblems(value: JsonObject, typeCode: string, path: string, containedIds: ReadonlySet<string>): ValueProblem[] {
  if (typeCode === 'Reference') {
    if (localReferenceResolves(value, containedIds)) return [];
    const text = `ref-1: the local reference '${String(value.reference)}' does not match any contained resource`;
    return [{ severity: 'error', code: 'invariant', text, path }];
  }
  if (typeCode === 'Extension') {
    if (extensionHasValueOrExtensions(value)) return [];
    return [{ severity: 'error', code: 'invariant', text: 'ext-1: an extension must have either extensions or a value[x], not both', path }];
  }
  if (typeCode === 'Period') {
    if (periodIsOrdered(value)) return [];
    return [{ severity: 'error', code: 'invariant', text: 'per-1: the period start must be before its end', path }];
  }
  if (typeCode === 'Coding') {
    const text = codingSystemProblem(value);
    return text ? [{ severity: 'error', code: 'value', text, path: path + '.system' }] : [];
  }
  if (typeCode === 'Attachment') {
    const text = attachmentSizeProblem(value);
    return text ? [{ severity: 'error', code: 'value', text, path: path + '.size' }] : [];
  }
  return [];
}

/** A Coding or CodeableConcept bound `required`: one of its codings must be in the value set. */
export function codedBindingProblem(value: JsonObject, property: PropertySchema, path: string): ValueProblem | undefined {
  const valueSet = property.requiredValueSet;
  const expansion = valueSet ? expandValueSet(valueSet) : undefined;
  if (!valueSet || !expansion) {
    return undefined;
  }
  const codings = property.typeCode === 'Coding' ? [value] : Array.isArray(value.coding) ? value.coding : [];
  let checked = 0;
  for (const coding of codings) {
    if (!isJsonObject(coding) || typeof coding.code !== 'string') {
      continue;
    }
    checked++;
    const system = coding.system;
    if (typeof system === 'string' ? expansion.pairs.has(system + '|' + coding.code) : expansion.codes.has(coding.code)) {
      return undefined;
    }
  }
  if (checked === 0) {
    return undefined;
  }
  return { severity: 'error', code: 'code-invalid', text: `No coding is in the required value set ${valueSet}`, path };
}
