import type { HttpAnswer } from './fhir-endpoint';

/** What became of one Bundle file. */
export interface BundleResult {
  name: string;
  ok: boolean;
  /** Entries the server answered with 2xx (created, updated, or found by `ifNoneExist`). */
  resources: number;
  /** Of those, 201 Created. */
  created: number;
  /** Why it failed, one line per failing entry (at most a few) or for the whole Bundle. */
  reasons: string[];
}

interface OutcomeJson {
  resourceType?: string;
  issue?: { severity?: string; code?: string; diagnostics?: string; details?: { text?: string }; expression?: string[] }[];
}

interface ResponseBundleJson {
  resourceType?: string;
  type?: string;
  entry?: { response?: { status?: string; outcome?: OutcomeJson } }[];
}

interface RequestBundleJson {
  entry?: { fullUrl?: string; resource?: { resourceType?: string; id?: string }; request?: { method?: string; url?: string } }[];
}

/** Failing entries listed per Bundle; the count says how many more there were. */
const REASONS_PER_BUNDLE = 3;

/**
 * Reads the server's answer to a posted Bundle. A transaction is all or nothing: a 2xx
 * with a transaction-response, or an error status with an OperationOutcome naming the
 * failing entry. A batch answers 200 with one response per entry, some of which may
 * have failed: the file then counts as failed, and its good entries still count.
 * `requestText` is parsed only to name a failing entry.
 */
export function readBundleAnswer(name: string, answer: HttpAnswer, requestText: string): BundleResult {
  let request: { json: RequestBundleJson | undefined } | undefined;
  const requestEntry = (index: number): string => {
    request ??= { json: parseJson(requestText) as RequestBundleJson | undefined };
    return entryLabel(request.json, index);
  };
  const json = parseJson(answer.body);
  if (answer.status < 200 || answer.status >= 300) {
    return { name, ok: false, resources: 0, created: 0, reasons: [`${answer.status}: ${outcomeText(json, answer.body, requestEntry)}`] };
  }
  const response = json as ResponseBundleJson | undefined;
  if (response?.resourceType !== 'Bundle' || !Array.isArray(response.entry)) {
    return { name, ok: false, resources: 0, created: 0, reasons: [`${answer.status} without a response Bundle: ${answer.body.slice(0, 200)}`] };
  }
  let resources = 0;
  let created = 0;
  const failed: string[] = [];
  let failedCount = 0;
  response.entry.forEach((entry, index) => {
    const status = entry?.response?.status ?? '';
    if (status.startsWith('2')) {
      resources++;
      if (status.startsWith('201')) created++;
    } else {
      failedCount++;
      if (failed.length < REASONS_PER_BUNDLE) {
        failed.push(`${requestEntry(index)}: ${status || 'no status'}: ${outcomeText(entry?.response?.outcome, '')}`);
      }
    }
  });
  if (failedCount > failed.length) {
    failed.push(`… and ${failedCount - failed.length} more of ${response.entry.length} entries failed`);
  }
  return { name, ok: failedCount === 0, resources, created, reasons: failed };
}

/**
 * The issues' diagnostics (or details.text); with `requestEntry`, also the failing
 * entry's fullUrl and resource when an issue's expression points at one.
 */
function outcomeText(json: unknown, body: string, requestEntry?: (index: number) => string): string {
  const outcome = json as OutcomeJson | undefined;
  if (outcome?.resourceType !== 'OperationOutcome' || !Array.isArray(outcome.issue)) {
    return body ? body.slice(0, 300) : 'no OperationOutcome';
  }
  const issues = outcome.issue.filter((i) => i.severity === 'error' || i.severity === 'fatal');
  const texts = (issues.length > 0 ? issues : outcome.issue).map((i) => i.diagnostics ?? i.details?.text ?? i.code ?? 'error');
  const entryIndex = outcome.issue
    .flatMap((i) => i.expression ?? [])
    .map((e) => /^Bundle\.entry\[(\d+)\]/.exec(e)?.[1])
    .find((i) => i !== undefined);
  const where = entryIndex === undefined || !requestEntry ? '' : ` [failing entry: ${requestEntry(Number(entryIndex))}]`;
  return `${[...new Set(texts)].join('; ')}${where}`;
}

/** `Bundle.entry[3] (POST Observation, urn:uuid:…, Observation/…)`, from the request Bundle as far as it can be read. */
function entryLabel(request: RequestBundleJson | undefined, index: number): string {
  const entry = request?.entry?.[index];
  const resource = entry?.resource?.resourceType && `${entry.resource.resourceType}${entry.resource.id ? `/${entry.resource.id}` : ''}`;
  const call = entry?.request?.method && `${entry.request.method} ${entry.request.url ?? ''}`.trim();
  const parts = [call, entry?.fullUrl, resource].filter(Boolean);
  return `Bundle.entry[${index}]${parts.length > 0 ? ` (${parts.join(', ')})` : ''}`;
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
