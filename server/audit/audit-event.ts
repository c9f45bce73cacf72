import type { AuditEvent, AuditEventAgent, AuditEventEntity, Bundle, Coding, Resource } from '@medplum/fhirtypes';
import type { Principal } from '../access/principal';
import { peekMember } from '../storage/lazy-resource';
import { elementInfo } from '../search/element-types';
import { isResourceType } from '../validation/structure-definitions';

// Codes: R4 AuditEvent (https://hl7.org/fhir/R4/auditevent.html) and IHE BALP
// (https://profiles.ihe.net/ITI/BALP/). See docs/audit.md.
export const AUDIT_EVENT_TYPE = 'http://terminology.hl7.org/CodeSystem/audit-event-type';
export const RESTFUL_INTERACTION = 'http://hl7.org/fhir/restful-interaction';
export const DCM = 'http://dicom.nema.org/resources/ontology/DCM';
export const ACT_REASON = 'http://terminology.hl7.org/CodeSystem/v3-ActReason';
const OBJECT_ROLE = 'http://terminology.hl7.org/CodeSystem/object-role';
const ENTITY_TYPE = 'http://terminology.hl7.org/CodeSystem/audit-entity-type';
const PARTICIPATION = 'http://terminology.hl7.org/CodeSystem/v3-ParticipationType';
const SECURITY_SOURCE = 'http://terminology.hl7.org/CodeSystem/security-source-type';
const BALP_CLIENT_IDENTIFIER = 'urn:ietf:rfc:6749:client_id';

export type AuditAction = 'C' | 'R' | 'U' | 'D' | 'E';

/** The restful-interaction subtype and action of one FHIR request. */
export interface InteractionKind {
  subtype: string;
  action: AuditAction;
  /** For subtype `operation`: its name without `$` (everything, transfer ...), recorded as a second subtype coding. */
  operation?: string;
}

/** What the audit needs to know about one request and its answer. */
export interface InteractionFacts {
  kind: InteractionKind;
  /** e.g. `GET /fhir/Patient/1`. */
  description: string;
  resourceType?: string;
  id?: string;
  versionId?: string;
  /** The raw query string, for search entities. */
  queryString?: string;
  status: number;
  /** The error's text for a failure. */
  outcomeText?: string;
  /** The resource or Bundle answered (for the entities it names). */
  answered?: Resource;
  principal?: Principal;
  sourceAddress?: string;
  purposeOfUse?: string[];
  requestId?: string;
  /** The caller's own words (a break-the-glass reason), kept with the purpose of use. */
  reason?: string;
  /** `Type/id` of further resources the interaction wrote. */
  entities?: string[];
}

/** Server identity for `source.observer`. */
export interface Observer {
  /** The server's base URL. */
  baseUrl: string;
  /** The audit stream of this process, also its source site. */
  stream: string;
}

/** 0 success, 4 minor failure (4xx), 8 serious failure (5xx): AuditEvent.outcome. */
export function outcomeOf(status: number): '0' | '4' | '8' {
  if (status >= 500) return '8';
  if (status >= 400) return '4';
  return '0';
}

export function purposeCodings(codes: readonly string[] | undefined): Coding[] {
  return (codes ?? []).map((code) => ({ system: ACT_REASON, code }));
}

/** One AuditEvent for a FHIR REST interaction (BALP "Basic AuditEvent" family). */
export function interactionAuditEvent(facts: InteractionFacts, observer: Observer, recorded = new Date()): AuditEvent {
  const outcome = outcomeOf(facts.status);
  const purpose = purposeCodings(facts.purposeOfUse);
  const subtype: Coding[] = [{ system: RESTFUL_INTERACTION, code: facts.kind.subtype }];
  if (facts.kind.operation) subtype.push({ system: `${observer.baseUrl}/audit/operation`, code: facts.kind.operation });
  const event: AuditEvent = {
    resourceType: 'AuditEvent',
    type: { system: AUDIT_EVENT_TYPE, code: 'rest', display: 'RESTful Operation' },
    subtype,
    action: facts.kind.action,
    recorded: recorded.toISOString(),
    outcome,
    outcomeDesc: facts.outcomeText ?? `${facts.status} ${facts.description}`,
    agent: agentsOf(facts.principal, facts.sourceAddress, purpose, facts.reason),
    source: sourceOf(observer),
    entity: entitiesOf(facts),
  };
  if (purpose.length > 0) event.purposeOfEvent = [facts.reason ? { coding: purpose, text: facts.reason } : { coding: purpose }];
  if (event.entity?.length === 0) delete event.entity;
  return event;
}

/** DICOM "User Authentication" (110114): a login (110122) of `username`, or its failure. */
export function loginAuditEvent(
  facts: { username: string; success: boolean; sourceAddress?: string; clientId?: string; description: string },
  observer: Observer,
  recorded = new Date()
): AuditEvent {
  const agent: AuditEventAgent[] = [
    {
      type: { coding: [{ system: PARTICIPATION, code: 'IRCP', display: 'information recipient' }] },
      who: { identifier: { value: facts.username } },
      altId: facts.username,
      requestor: true,
      network: facts.sourceAddress ? { address: facts.sourceAddress, type: '2' } : undefined,
    },
  ];
  if (facts.clientId) agent.push(clientAgent(facts.clientId));
  return {
    resourceType: 'AuditEvent',
    type: { system: DCM, code: '110114', display: 'User Authentication' },
    subtype: [{ system: DCM, code: '110122', display: 'Login' }],
    action: 'E',
    recorded: recorded.toISOString(),
    outcome: facts.success ? '0' : '4',
    outcomeDesc: facts.description,
    agent: stripUndefined(agent),
    source: sourceOf(observer),
  };
}

/**
 * An OAuth token request (issue or refusal). No DICOM code names it; we use DICOM
 * "User Authentication" (110114) with subtype 110122 Login, since issuing a token is the
 * client (and its user) authenticating to the API, plus the grant type as a second
 * subtype from our own system (docs/audit.md).
 */
export function tokenAuditEvent(
  facts: { clientId?: string; grantType?: string; success: boolean; status: number; sourceAddress?: string; description: string; scope?: string },
  observer: Observer,
  recorded = new Date()
): AuditEvent {
  const client = clientAgent(facts.clientId ?? 'unknown');
  client.requestor = true;
  if (facts.sourceAddress) client.network = { address: facts.sourceAddress, type: '2' };
  return {
    resourceType: 'AuditEvent',
    type: { system: DCM, code: '110114', display: 'User Authentication' },
    subtype: [
      { system: DCM, code: '110122', display: 'Login' },
      { system: `${observer.baseUrl}/audit/oauth-grant-type`, code: facts.grantType || 'unknown' },
    ],
    action: 'E',
    recorded: recorded.toISOString(),
    outcome: facts.success ? '0' : outcomeOf(facts.status) === '0' ? '4' : outcomeOf(facts.status),
    outcomeDesc: facts.description + (facts.scope ? ` (scope: ${facts.scope})` : ''),
    agent: [client],
    source: sourceOf(observer),
  };
}

function sourceOf(observer: Observer): AuditEvent['source'] {
  return {
    site: observer.stream,
    observer: { display: observer.baseUrl, identifier: { system: 'urn:ietf:rfc:3986', value: observer.baseUrl } },
    type: [{ system: SECURITY_SOURCE, code: '4', display: 'Application Server' }],
  };
}

function clientAgent(clientId: string): AuditEventAgent {
  return {
    type: { coding: [{ system: DCM, code: '110150', display: 'Application' }] },
    who: { identifier: { system: BALP_CLIENT_IDENTIFIER, value: clientId } },
    requestor: false,
  };
}

function agentsOf(principal: Principal | undefined, address: string | undefined, codings: Coding[], reason?: string): AuditEventAgent[] {
  const network = address ? { address, type: '2' as const } : undefined;
  const purpose = codings.length > 0 ? [reason ? { coding: codings, text: reason } : { coding: codings }] : undefined;
  if (!principal) {
    // No token (AUTH_REQUIRED=false, or refused before one was verified): all we know is the address.
    return [{ who: { display: 'anonymous' }, requestor: true, network, purposeOfUse: purpose }].map(stripUndefinedOne);
  }
  const agents: AuditEventAgent[] = [];
  const client = clientAgent(principal.clientId);
  if (principal.fhirUser || principal.userId) {
    agents.push(
      stripUndefinedOne({
        type: { coding: [{ system: PARTICIPATION, code: 'IRCP', display: 'information recipient' }] },
        who: principal.fhirUser ? { reference: principal.fhirUser } : { identifier: { value: principal.userId } },
        altId: principal.userId,
        role: principal.role ? [{ text: principal.role }] : undefined,
        requestor: true,
        network,
        purposeOfUse: purpose,
      })
    );
    client.network = network;
  } else {
    // A backend service: the client is the requestor.
    client.requestor = true;
    client.network = network;
    if (purpose) client.purposeOfUse = purpose;
  }
  agents.push(stripUndefinedOne(client));
  return agents;
}

const MAX_ENTITIES = 100;

function entitiesOf(facts: InteractionFacts): AuditEventEntity[] {
  const entities: AuditEventEntity[] = [];
  const patients = new Set<string>();
  if (facts.resourceType && facts.id) {
    const reference = facts.versionId
      ? `${facts.resourceType}/${facts.id}/_history/${facts.versionId}`
      : `${facts.resourceType}/${facts.id}`;
    entities.push({
      what: { reference },
      type: { system: ENTITY_TYPE, code: '2', display: 'System Object' },
      role: { system: OBJECT_ROLE, code: '4', display: 'Domain Resource' },
    });
    if (facts.resourceType === 'Patient') patients.add(`Patient/${facts.id}`);
  }
  if (facts.kind.subtype.startsWith('search') || facts.kind.subtype === 'operation') {
    if (facts.queryString) {
      entities.push({
        type: { system: ENTITY_TYPE, code: '2', display: 'System Object' },
        role: { system: OBJECT_ROLE, code: '24', display: 'Query' },
        query: Buffer.from(facts.queryString, 'utf8').toString('base64'),
        description: facts.resourceType,
      });
    }
  }
  if (facts.status < 400 && facts.answered) {
    for (const patient of patientsIn(facts.answered)) patients.add(patient);
  }
  if (facts.answered?.resourceType === 'Bundle' && facts.kind.subtype !== 'search-type' && facts.kind.subtype !== 'search-system') {
    // transaction / batch: the resources each entry changed.
    for (const entry of (facts.answered as Bundle).entry ?? []) {
      const location = entry.response?.location?.replace(/\/_history\/.*$/, '');
      if (location && entities.length < MAX_ENTITIES) {
        entities.push({ what: { reference: location }, role: { system: OBJECT_ROLE, code: '4', display: 'Domain Resource' } });
      }
    }
  }
  for (const written of facts.status < 400 ? (facts.entities ?? []) : []) {
    if (entities.length >= MAX_ENTITIES) break;
    entities.push({ what: { reference: written }, type: { system: ENTITY_TYPE, code: '2', display: 'System Object' }, role: { system: OBJECT_ROLE, code: '4', display: 'Domain Resource' } });
  }
  for (const patient of [...patients].slice(0, MAX_ENTITIES)) {
    // BALP: the patient whose data was concerned, role 1 "Patient".
    entities.push({
      what: { reference: patient },
      type: { system: ENTITY_TYPE, code: '1', display: 'Person' },
      role: { system: OBJECT_ROLE, code: '1', display: 'Patient' },
    });
  }
  return entities;
}

const PATIENT_FIELDS = ['subject', 'patient', 'beneficiary'];
const patientFieldsByType = new Map<string, string[]>();

/** Which of subject, patient and beneficiary `resourceType` has (a record of thousands is looked at for each entry). */
function patientFields(resourceType: string): string[] {
  let fields = patientFieldsByType.get(resourceType);
  if (!fields) {
    fields = PATIENT_FIELDS.filter((field) => elementInfo(`${resourceType}.${field}`) !== undefined);
    // An unknown type (never stored): every field, as before.
    if (!isResourceType(resourceType)) fields = PATIENT_FIELDS;
    else patientFieldsByType.set(resourceType, fields);
  }
  return fields;
}

/** The Patients whose data `resource` (or the resources of a Bundle) is: Patient itself, or `subject`/`patient` references to one. */
export function patientsIn(resource: Resource): Set<string> {
  const found = new Set<string>();
  const visit = (r: Resource | undefined): void => {
    if (!r) return;
    if (r.resourceType === 'Patient' && r.id) found.add(`Patient/${r.id}`);
    for (const field of patientFields(r.resourceType)) {
      // Looked at, not read into the resource: a lazy one (a search page, a record) is still written as stored.
      const ref = (peekMember(r, field) as { reference?: string } | undefined)?.reference;
      if (typeof ref === 'string' && /^Patient\/[^/]+$/.test(ref)) found.add(ref);
    }
  };
  if (resource.resourceType === 'Bundle') {
    for (const entry of (resource as Bundle).entry ?? []) visit(entry.resource);
  } else {
    visit(resource);
  }
  return found;
}

function stripUndefinedOne<T extends object>(value: T): T {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as T;
}

function stripUndefined<T extends object>(values: T[]): T[] {
  return values.map(stripUndefinedOne);
}
