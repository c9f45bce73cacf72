import type { OperationOutcome, OperationOutcomeIssue } from '@medplum/fhirtypes';

/**
 * The one error type of the server: an HTTP status and the OperationOutcome that
 * explains it. `http/` renders it; everything else only throws it.
 */
export class OperationOutcomeError extends Error {
  readonly status: number;
  readonly outcome: OperationOutcome;
  /** Response headers that belong to the error (WWW-Authenticate on a 401). */
  headers?: Record<string, string>;

  constructor(status: number, outcome: OperationOutcome) {
    super(outcome.issue?.[0]?.diagnostics ?? outcome.issue?.[0]?.details?.text ?? `HTTP ${status}`);
    this.status = status;
    this.outcome = outcome;
  }
}

export type IssueCode = OperationOutcomeIssue['code'];

export function outcome(issues: OperationOutcomeIssue[]): OperationOutcome {
  return { resourceType: 'OperationOutcome', issue: issues };
}

export function issue(
  severity: OperationOutcomeIssue['severity'],
  code: IssueCode,
  text: string,
  expression?: string | string[]
): OperationOutcomeIssue {
  const result: OperationOutcomeIssue = { severity, code, diagnostics: text, details: { text } };
  if (expression !== undefined) {
    result.expression = Array.isArray(expression) ? expression : [expression];
  }
  return result;
}

function fail(status: number, code: IssueCode, text: string, expression?: string): OperationOutcomeError {
  return new OperationOutcomeError(status, outcome([issue('error', code, text, expression)]));
}

export const badRequest = (text: string, expression?: string): OperationOutcomeError =>
  fail(400, 'invalid', text, expression);
/** 401: the error middleware adds `WWW-Authenticate` from `headers`. */
export const unauthorized = (text: string, wwwAuthenticate: string): OperationOutcomeError =>
  Object.assign(fail(401, 'login', text), { headers: { 'WWW-Authenticate': wwwAuthenticate } });
export const forbidden = (text: string): OperationOutcomeError => fail(403, 'forbidden', text);
export const notFound = (text: string, code: IssueCode = 'not-found'): OperationOutcomeError => fail(404, code, text);
export const gone = (text: string): OperationOutcomeError => fail(410, 'deleted', text);
export const methodNotAllowed = (text: string): OperationOutcomeError => fail(405, 'not-supported', text);
export const conflict = (text: string): OperationOutcomeError => fail(409, 'conflict', text);
export const preconditionFailed = (text: string): OperationOutcomeError => fail(412, 'conflict', text);
export const tooLarge = (text: string): OperationOutcomeError => fail(413, 'too-costly', text);
export const unsupportedMediaType = (text: string): OperationOutcomeError => fail(415, 'not-supported', text);
export const notAcceptable = (text: string): OperationOutcomeError => fail(406, 'not-supported', text);
/** 429 (RFC 6585): the error middleware adds `Retry-After` (seconds) from `headers`. */
export const tooManyRequests = (text: string, retryAfterSeconds: number): OperationOutcomeError =>
  Object.assign(fail(429, 'throttled', text), { headers: { 'Retry-After': String(retryAfterSeconds) } });
/** A failure the server reports on purpose (a background job that failed), not an uncaught exception. */
export const internalError = (text: string): OperationOutcomeError => fail(500, 'exception', text);
export const unprocessable = (text: string, expression?: string): OperationOutcomeError =>
  fail(422, 'business-rule', text, expression);

export function informational(text: string): OperationOutcome {
  return outcome([issue('information', 'informational', text)]);
}

export function isOperationOutcomeError(err: unknown): err is OperationOutcomeError {
  return err instanceof OperationOutcomeError;
}
