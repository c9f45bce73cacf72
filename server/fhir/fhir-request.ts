import type { Resource } from '@medplum/fhirtypes';
import type { Logger } from 'pino';
import type { Principal } from '../access/principal';
import type { HealthCardKey } from '../auth/health-card-key';
import type { Config } from '../config';
import type { ResourceStore } from '../storage/resource-store';
import type { NativeContent } from './binary-content';
import type { ExportJobStore } from '../storage/export-jobs';
import type { RouteMatch } from './route-matcher';

export type PreferReturn = 'minimal' | 'representation' | 'OperationOutcome';

/** An HTTP request as interaction handlers see it: plain data, no Koa. */
export interface FhirRequest {
  method: string;
  resourceType?: string;
  id?: string;
  versionId?: string;
  /** Compartment search `Patient/[id]/[type]`: the compartment's type and id. */
  compartment?: { type: string; id: string };
  query: Record<string, string | string[] | undefined>;
  /** The raw query string without '?', for links and conditional criteria. */
  queryString: string;
  body?: unknown;
  contentType?: string;
  ifMatch?: string;
  ifNoneExist?: string;
  ifNoneMatch?: string;
  ifModifiedSince?: string;
  preferReturn?: PreferReturn;
  preferHandling?: 'strict' | 'lenient';
  /** `Prefer: respond-async` (Bulk Data kick-off). */
  preferAsync?: boolean;
  /** A transaction's POST entry: the id the transaction gave it so that other entries could refer to it. */
  assignedId?: string;
  /** The caller's IP address (X-Forwarded-For honoured), for the AuditEvent. */
  sourceAddress?: string;
  /** v3-ActReason codes from the `X-Purpose-Of-Use` header (TREAT, ETREAT, BTG …), for the AuditEvent. */
  purposeOfUse?: string[];
  /**
   * A media type other than FHIR JSON that the client's Accept prefers (http/negotiation.ts),
   * for the few handlers that can answer in one ($emergency-card: application/smart-health-card);
   * the others ignore it and answer FHIR JSON.
   */
  alternativeType?: string;
  /**
   * A read or vread of Binary whose client did not ask for FHIR JSON (http/negotiation.ts):
   * the Accept header (empty when there was none) that the Binary's own content, which is
   * then the answer, must satisfy (binary.html#rest).
   */
  binaryAccept?: string;
}

/** What a handler answers; `http/` turns it into the HTTP response. */
export interface FhirResponse {
  status: number;
  resource?: Resource;
  headers?: Record<string, string>;
  /** Create/update/patch responses honour `Prefer: return=`. */
  honoursPreferReturn?: boolean;
  /** An answer in the request's `alternativeType` instead of a resource: a JSON document with its media type. */
  document?: { contentType: string; json: unknown };
  /** A Binary's content answered as itself (`binaryAccept`); `resource` still names the Binary for the AuditEvent. */
  content?: NativeContent;
  /** What the AuditEvent of this call records beyond the request: the reason given, the resources the operation wrote. */
  audit?: AuditDetail;
}

export interface AuditDetail {
  /** Free text from the caller (a break-the-glass or transfer reason). */
  reason?: string;
  /** `Type/id` of resources the operation created or changed. */
  entities?: string[];
}

/** What every handler is given besides the request. */
export interface FhirContext {
  repo: ResourceStore;
  config: Config;
  /** `PUBLIC_URL/fhir`: the base of every link and Location. */
  baseUrl: string;
  /** The route table's matcher, for requests that arrive inside a Bundle. */
  findRoute: (method: string, path: string) => RouteMatch;
  /** Who asks (a verified bearer token); `repo` is then already confined to what it grants. */
  principal?: Principal;
  /** For faults that do not end the request (a failed batch entry). */
  log?: Pick<Logger, 'error'>;
  /** Signs SMART Health Cards ($emergency-card): the server's long-lived ES256 issuer key. */
  healthCardKey?: HealthCardKey;
  /** Bulk Data export jobs and their files ($export). */
  exportJobs?: ExportJobStore;
}

export type FhirHandler = (req: FhirRequest, ctx: FhirContext) => Promise<FhirResponse>;
