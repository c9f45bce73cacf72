import type { CodeableConcept, Coding, Parameters, ParametersParameter, Period, Reference, Resource } from '@medplum/fhirtypes';
import { referenceIdAnywhere } from '../core/references';
import { badRequest, OperationOutcomeError, outcome } from '../core/outcome';
import { isBlocking, validateResource } from '../validation/validate-resource';

/**
 * The input of a custom operation: a Parameters body (https://hl7.org/fhir/R4/parameters.html),
 * or for GET the query string. Values are looked up by name; a wrong shape is a 400 naming it.
 */
export class OperationInput {
  private constructor(
    private readonly operation: string,
    private readonly params: readonly ParametersParameter[],
    private readonly query: Record<string, string | string[] | undefined>
  ) {}

  static of(operation: string, body: unknown, query: Record<string, string | string[] | undefined> = {}): OperationInput {
    if (body === undefined || body === null) return new OperationInput(operation, [], query);
    if (typeof body !== 'object' || (body as { resourceType?: unknown }).resourceType !== 'Parameters') {
      throw badRequest(`$${operation} takes a Parameters resource as its body`);
    }
    const parameter = (body as Parameters).parameter ?? [];
    if (!Array.isArray(parameter)) throw badRequest(`$${operation}: Parameters.parameter must be an array`);
    return new OperationInput(operation, parameter, query);
  }

  private one(name: string): ParametersParameter | undefined {
    const found = this.params.filter((p) => p?.name === name);
    if (found.length > 1) throw badRequest(`$${this.operation}: parameter "${name}" may appear only once`, name);
    return found[0];
  }

  private fromQuery(name: string): string | undefined {
    const value = this.query[name];
    if (Array.isArray(value)) {
      if (value.length > 1) throw badRequest(`$${this.operation}: parameter "${name}" may appear only once`, name);
      return value[0];
    }
    return value;
  }

  /** A valueString (or valueCode / valueMarkdown / valueId / valueUri / valueCanonical), trimmed; empty counts as absent. */
  string(name: string): string | undefined {
    const p = this.one(name);
    const value = p ? (p.valueString ?? p.valueCode ?? p.valueMarkdown ?? p.valueId ?? p.valueUri ?? p.valueCanonical) : this.fromQuery(name);
    if (p && value === undefined) throw badRequest(`$${this.operation}: parameter "${name}" must be a valueString`, name);
    const trimmed = typeof value === 'string' ? value.trim() : undefined;
    return trimmed ? trimmed : undefined;
  }

  requiredString(name: string): string {
    const value = this.string(name);
    if (value === undefined) throw badRequest(`$${this.operation}: parameter "${name}" is required`, name);
    return value;
  }

  /** A valueReference of `type` (`Type/id`, relative or absolute), as its id. */
  referenceId(name: string, type: string): string | undefined {
    const p = this.one(name);
    let reference: string | undefined;
    if (p) {
      reference = (p.valueReference as Reference | undefined)?.reference ?? p.valueString ?? p.valueUri;
      if (reference === undefined) throw badRequest(`$${this.operation}: parameter "${name}" must be a valueReference to a ${type}`, name);
    } else {
      reference = this.fromQuery(name);
    }
    if (reference === undefined) return undefined;
    const id = referenceIdAnywhere(reference, type);
    if (!id) throw badRequest(`$${this.operation}: parameter "${name}" must refer to a ${type}, got "${reference}"`, name);
    return id;
  }

  /** An Identifier as a token search value `system|value` (valueIdentifier, or a `system|value` string). */
  identifierToken(name: string): string | undefined {
    const p = this.one(name);
    if (p?.valueIdentifier) {
      const { system, value } = p.valueIdentifier;
      if (!value) throw badRequest(`$${this.operation}: parameter "${name}" needs an identifier value`, name);
      return system ? `${system}|${value}` : value;
    }
    return p ? (p.valueString ?? p.valueCode) : this.fromQuery(name);
  }

  boolean(name: string): boolean | undefined {
    const p = this.one(name);
    if (p) {
      if (typeof p.valueBoolean !== 'boolean') throw badRequest(`$${this.operation}: parameter "${name}" must be a valueBoolean`, name);
      return p.valueBoolean;
    }
    const raw = this.fromQuery(name);
    if (raw === undefined) return undefined;
    if (raw !== 'true' && raw !== 'false') throw badRequest(`$${this.operation}: parameter "${name}" must be true or false`, name);
    return raw === 'true';
  }

  /** A positive whole number (valueInteger / valuePositiveInt / valueDecimal without fraction). */
  positiveInteger(name: string): number | undefined {
    const p = this.one(name);
    const raw = p ? (p.valueInteger ?? p.valuePositiveInt ?? p.valueUnsignedInt ?? p.valueDecimal) : this.fromQuery(name);
    if (raw === undefined) return undefined;
    const value = Number(raw);
    if (!Number.isInteger(value) || value <= 0) throw badRequest(`$${this.operation}: parameter "${name}" must be a positive integer`, name);
    return value;
  }

  /** A whole number ≥ 0 (valueInteger / valueUnsignedInt / valuePositiveInt). */
  nonNegativeInteger(name: string): number | undefined {
    const p = this.one(name);
    const raw = p ? (p.valueInteger ?? p.valueUnsignedInt ?? p.valuePositiveInt) : this.fromQuery(name);
    if (raw === undefined) return undefined;
    const value = Number(raw);
    if (!Number.isInteger(value) || value < 0 || String(raw).trim() === '') throw badRequest(`$${this.operation}: parameter "${name}" must be a whole number of 0 or more`, name);
    return value;
  }

  /** A resource parameter (`parameter.resource`): only in a Parameters body. */
  resource(name: string): Resource | undefined {
    const p = this.one(name);
    if (p && !p.resource) throw badRequest(`$${this.operation}: parameter "${name}" must carry a resource`, name);
    return p?.resource;
  }

  /** A valueCoding (only in a Parameters body: a query string carries primitives). */
  coding(name: string): Coding | undefined {
    const p = this.one(name);
    if (p && !p.valueCoding) throw badRequest(`$${this.operation}: parameter "${name}" must be a valueCoding`, name);
    return p?.valueCoding;
  }

  /** Every valueCoding of a repeatable parameter; in a query string, `system|code` values. */
  codings(name: string): Coding[] {
    const fromBody = this.params
      .filter((p) => p?.name === name)
      .map((p) => {
        if (!p.valueCoding) throw badRequest(`$${this.operation}: parameter "${name}" must be a valueCoding`, name);
        return p.valueCoding;
      });
    const query = this.query[name];
    const fromQuery = (query === undefined ? [] : Array.isArray(query) ? query : [query]).map((value): Coding => {
      const bar = value.indexOf('|');
      if (bar <= 0 || bar === value.length - 1) throw badRequest(`$${this.operation}: parameter "${name}" must be system|code, got "${value}"`, name);
      return { system: value.slice(0, bar), code: value.slice(bar + 1) };
    });
    return [...fromBody, ...fromQuery];
  }

  /** A decimal (valueDecimal, or a number in the query string). */
  decimal(name: string): number | undefined {
    const p = this.one(name);
    const raw = p ? p.valueDecimal : this.fromQuery(name);
    if (p && typeof raw !== 'number') throw badRequest(`$${this.operation}: parameter "${name}" must be a valueDecimal`, name);
    if (raw === undefined) return undefined;
    if (typeof raw === 'string' && !/^-?\d+(\.\d+)?$/.test(raw.trim())) throw badRequest(`$${this.operation}: parameter "${name}" must be a decimal, got "${raw}"`, name);
    return Number(raw);
  }

  /** A valuePeriod (only in a Parameters body). */
  period(name: string): Period | undefined {
    const p = this.one(name);
    if (p && !p.valuePeriod) throw badRequest(`$${this.operation}: parameter "${name}" must be a valuePeriod`, name);
    return p?.valuePeriod;
  }

  /** A valueCodeableConcept (only in a Parameters body). */
  codeableConcept(name: string): CodeableConcept | undefined {
    const p = this.one(name);
    if (p && !p.valueCodeableConcept) throw badRequest(`$${this.operation}: parameter "${name}" must be a valueCodeableConcept`, name);
    return p?.valueCodeableConcept;
  }

  /** Every value of a repeatable primitive parameter (`property` of $lookup), from the body or the query. */
  strings(name: string): string[] {
    const fromBody = this.params.filter((p) => p?.name === name).map((p) => p.valueCode ?? p.valueString);
    const query = this.query[name];
    const fromQuery = query === undefined ? [] : Array.isArray(query) ? query : [query];
    return [...fromBody, ...fromQuery].filter((v): v is string => typeof v === 'string' && v.trim() !== '').map((v) => v.trim());
  }
}

/** Stands in for a `resource` parameter while the Parameters around it are checked. */
const PLACEHOLDER = { resourceType: 'Basic', code: { text: 'resource parameter' } };

function withoutResources(parameters: unknown): unknown {
  if (!Array.isArray(parameters)) return parameters;
  return parameters.map((p: unknown) => {
    if (p === null || typeof p !== 'object' || Array.isArray(p)) return p;
    const copy: Record<string, unknown> = { ...(p as Record<string, unknown>) };
    if (copy.resource !== null && typeof copy.resource === 'object' && !Array.isArray(copy.resource)) copy.resource = PLACEHOLDER;
    if ('part' in copy) copy.part = withoutResources(copy.part);
    return copy;
  });
}

/**
 * An operation's Parameters body is checked against R4 before the operation reads it (a
 * 400 naming the element: `parameter` not an array, a valueInteger that is text, a
 * valueCoding that is a string …). The resources it carries are left to the operation,
 * which judges them its own way ($validate reports on them with a 200, $submit and
 * $match refuse them).
 */
export function assertValidParameters(body: unknown): void {
  if (body === null || typeof body !== 'object' || (body as { resourceType?: unknown }).resourceType !== 'Parameters') return;
  const shape = { ...(body as Record<string, unknown>), parameter: withoutResources((body as { parameter?: unknown }).parameter) };
  if (!('parameter' in body)) delete shape.parameter;
  const issues = validateResource(shape).filter(isBlocking);
  if (issues.length > 0) throw new OperationOutcomeError(400, outcome(issues));
}
