import type { CapabilityStatementRestResourceInteraction, CapabilityStatementRestInteraction } from '@medplum/fhirtypes';
import { capabilityStatement } from './capabilities';
import { terminologyCapabilities } from './terminology-capabilities';
import { badRequest } from '../core/outcome';
import { transactionOrBatch } from './bundle-interaction';
import { create } from './create';
import { conditionalDelete, deleteResource } from './delete';
import type { FhirHandler } from './fhir-request';
import { history } from './history';
import { conditionalPatch, patch } from './patch';
import { read } from './read';
import { search } from './search';
import { compartmentSearchAll, systemSearch } from './system-search';
import { compartmentTypes, compartmentUrl } from '../search/compartment-definitions';
import { conditionalUpdate, update } from './update';
import { vread } from './vread';
import { everything } from '../operations/everything';
import { encounterEverything } from '../operations/encounter-everything';
import { listFind } from '../operations/list-find';
import { compositionDocument } from '../operations/composition-document';
import { patientSummary } from '../operations/patient-summary';
import { patientMatch } from '../operations/patient-match';
import { observationLastn } from '../operations/observation-lastn';
import { observationStats } from '../operations/observation-stats';
import { valueSetExpand } from '../operations/valueset-expand';
import { valueSetValidateCode } from '../operations/valueset-validate-code';
import { codeSystemValidateCode } from '../operations/codesystem-validate-code';
import { codeSystemLookup } from '../operations/codesystem-lookup';
import { codeSystemSubsumes } from '../operations/codesystem-subsumes';
import { conceptMapTranslate } from '../operations/conceptmap-translate';
import { validate } from '../operations/validate';
import { bedAvailability } from '../operations/bed-availability';
import { emergencyAccess } from '../operations/emergency-access';
import { transfer } from '../operations/transfer';
import { emergencyCard } from '../operations/emergency-card';
import { healthCardsIssue } from '../operations/health-cards-issue';
import { submitClaim } from '../operations/claim-submit';
import { metaAdd, metaDelete, metaInUse, metaRead } from '../operations/meta';
import { exportCancel, exportFile, exportKickoff, exportStatus } from '../operations/bulk-export';

type TypeInteraction = CapabilityStatementRestResourceInteraction['code'];
type SystemInteraction = CapabilityStatementRestInteraction['code'];

/**
 * The FHIR REST API as data: the HTTP adapter mounts these under /fhir in this order
 * (literal segments before `:id`), and the CapabilityStatement is derived from the same
 * table, so it can only ever claim what is routed.
 */
export interface Route {
  method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  path: string;
  handler: FhirHandler;
  /** Type-level interaction this route implements, for the CapabilityStatement. */
  interaction?: TypeInteraction;
  systemInteraction?: SystemInteraction | SystemInteraction[];
  /** Operation name (without $) for the CapabilityStatement. */
  operation?: string;
  /** The CompartmentDefinition a compartment search route serves. */
  compartment?: string;
  /** Capability flags this route adds. */
  conditional?: 'create' | 'update' | 'patch' | 'delete';
  /** Purposes of use (v3-ActReason) every call of this route is recorded with, whatever the request says: BTG for break-the-glass. */
  auditPurposeOfUse?: string[];
  /** The operation's canonical OperationDefinition, where it differs by level (Bulk Data's export, patient-export, group-export). */
  definition?: string;
  /** A step of another operation's flow (Bulk Data status and files): audited as `operation`, not listed in the CapabilityStatement. */
  unlisted?: boolean;
  /** Takes its search parameters as an x-www-form-urlencoded body, as `_search` does. */
  form?: boolean;
}

const BULK_DATA = 'http://hl7.org/fhir/uv/bulkdata/OperationDefinition';
const IPS_SUMMARY = 'http://hl7.org/fhir/uv/ips/OperationDefinition/summary';
const HEALTH_CARDS_ISSUE = 'http://hl7.org/fhir/uv/smart-health-cards-and-links/OperationDefinition/patient-i-health-cards-issue';

/** Terminology operations, each at type and instance level, by GET and POST: [type, operation, handler, definition when not the name's]. */
const TERMINOLOGY_OPERATIONS: [string, string, FhirHandler, string?][] = [
  ['ValueSet', 'expand', valueSetExpand],
  ['ValueSet', 'validate-code', valueSetValidateCode, 'http://hl7.org/fhir/OperationDefinition/ValueSet-validate-code'],
  ['CodeSystem', 'validate-code', codeSystemValidateCode, 'http://hl7.org/fhir/OperationDefinition/CodeSystem-validate-code'],
  ['CodeSystem', 'lookup', codeSystemLookup],
  ['CodeSystem', 'subsumes', codeSystemSubsumes],
  ['ConceptMap', 'translate', conceptMapTranslate],
];

function terminologyRoutes(level: 'type' | 'instance'): Route[] {
  return TERMINOLOGY_OPERATIONS.flatMap(([type, operation, handler, definition]) =>
    (['GET', 'POST'] as const).map((method): Route => ({ method, path: `/${type}/${level === 'instance' ? ':id/' : ''}$${operation}`, handler, operation, ...(definition ? { definition } : {}) }))
  );
}

export const routes: Route[] = [
  {
    method: 'GET',
    path: '/metadata',
    // R4 http.html#capabilities: mode full (the default) and normal are the same statement here.
    handler: async (req, ctx) => {
      const mode = req.query.mode;
      if (mode === 'terminology') return { status: 200, resource: terminologyCapabilities(ctx.baseUrl) };
      if (mode !== undefined && mode !== 'full' && mode !== 'normal') throw badRequest(`mode must be full, normal or terminology, not '${String(mode)}'`, 'mode');
      return { status: 200, resource: capabilityStatement(routes, ctx.baseUrl) };
    },
  },
  { method: 'GET', path: '/', handler: systemSearch, systemInteraction: 'search-system' },
  { method: 'POST', path: '/', handler: transactionOrBatch, systemInteraction: ['transaction', 'batch'] },
  { method: 'POST', path: '/_search', handler: systemSearch, systemInteraction: 'search-system' },
  // R4 defines GET [base]?… and POST [base]/_search; clients (fhir-kit-client's systemSearch) also send GET [base]/_search?…,
  // which can be nothing else here: `_search` is not a valid id.
  { method: 'GET', path: '/_search', handler: systemSearch, systemInteraction: 'search-system' },
  { method: 'GET', path: '/_history', handler: history, systemInteraction: 'history-system' },
  // Bulk Data export (docs/bulk-export.md): kick-off at three levels, then status and files.
  { method: 'GET', path: '/$export', handler: exportKickoff, operation: 'export', definition: `${BULK_DATA}/export` },
  { method: 'GET', path: '/Patient/$export', handler: exportKickoff, operation: 'export', definition: `${BULK_DATA}/patient-export` },
  { method: 'GET', path: '/Group/:id/$export', handler: exportKickoff, operation: 'export', definition: `${BULK_DATA}/group-export` },
  { method: 'POST', path: '/$export', handler: exportKickoff, operation: 'export', definition: `${BULK_DATA}/export` },
  { method: 'POST', path: '/Patient/$export', handler: exportKickoff, operation: 'export', definition: `${BULK_DATA}/patient-export` },
  { method: 'POST', path: '/Group/:id/$export', handler: exportKickoff, operation: 'export', definition: `${BULK_DATA}/group-export` },
  { method: 'GET', path: '/$export-status/:id', handler: exportStatus, operation: 'export', unlisted: true },
  { method: 'DELETE', path: '/$export-status/:id', handler: exportCancel, operation: 'export', unlisted: true },
  { method: 'GET', path: '/$export-file/:id', handler: exportFile, operation: 'export', unlisted: true },
  { method: 'GET', path: '/:resourceType/_history', handler: history, interaction: 'history-type' },
  { method: 'POST', path: '/:resourceType/_search', handler: search, interaction: 'search-type' },
  { method: 'GET', path: '/:resourceType/_search', handler: search, interaction: 'search-type' },
  { method: 'POST', path: '/:resourceType/$validate', handler: validate, operation: 'validate' },
  // A literal type as first segment: the operation is only on that type (CapabilityStatement too).
  { method: 'GET', path: '/Patient/$everything', handler: everything, operation: 'everything' },
  { method: 'POST', path: '/Patient/$everything', handler: everything, operation: 'everything' },
  // A patient's functional list (`$current-allergies` …) as a List.
  { method: 'GET', path: '/Observation/$lastn', handler: observationLastn, operation: 'lastn' },
  { method: 'POST', path: '/Observation/$lastn', handler: observationLastn, operation: 'lastn', form: true },
  // Statistics over a subject's measurements (R4 observation-operation-stats).
  { method: 'GET', path: '/Observation/$stats', handler: observationStats, operation: 'stats' },
  { method: 'POST', path: '/Observation/$stats', handler: observationStats, operation: 'stats' },
  { method: 'GET', path: '/List/$find', handler: listFind, operation: 'find' },
  { method: 'POST', path: '/List/$find', handler: listFind, operation: 'find' },
  // Which stored patients may be the person described (R4 patient-operation-match, an MPI query).
  { method: 'POST', path: '/Patient/$match', handler: patientMatch, operation: 'match' },
  // A patient's summary as an International Patient Summary document (HL7 IPS `summary`).
  { method: 'GET', path: '/Patient/$summary', handler: patientSummary, operation: 'summary', definition: IPS_SUMMARY },
  { method: 'POST', path: '/Patient/$summary', handler: patientSummary, operation: 'summary', definition: IPS_SUMMARY },
  // A Composition as a document Bundle (R4 composition-operation-document).
  { method: 'GET', path: '/Composition/$document', handler: compositionDocument, operation: 'document' },
  { method: 'POST', path: '/Composition/$document', handler: compositionDocument, operation: 'document' },
  // Terminology ($expand, $validate-code, $lookup, $subsumes, $translate) over the ValueSets and CodeSystems held here and the official R4 ones.
  ...terminologyRoutes('type'),
  // Break-the-glass by health ID (an `identifier` parameter): recorded with purpose of use BTG whatever happens.
  { method: 'POST', path: '/Patient/$emergency-access', handler: emergencyAccess, operation: 'emergency-access', auditPurposeOfUse: ['BTG'] },
  // Insurers' claims: the Claim is stored and adjudicated, the answer is the ClaimResponse.
  { method: 'POST', path: '/Claim/$submit', handler: submitClaim, operation: 'submit' },
  // (operation routes of other modules: add here)
  { method: 'GET', path: '/Organization/$bed-availability', handler: bedAvailability, operation: 'bed-availability' },
  { method: 'GET', path: '/$meta', handler: metaInUse, operation: 'meta' },
  { method: 'POST', path: '/$meta', handler: metaInUse, operation: 'meta' },
  { method: 'GET', path: '/:resourceType/$meta', handler: metaInUse, operation: 'meta' },
  { method: 'POST', path: '/:resourceType/$meta', handler: metaInUse, operation: 'meta' },
  { method: 'GET', path: '/:resourceType', handler: search, interaction: 'search-type' },
  { method: 'POST', path: '/:resourceType', handler: create, interaction: 'create', conditional: 'create' },
  { method: 'PUT', path: '/:resourceType', handler: conditionalUpdate, conditional: 'update' },
  { method: 'DELETE', path: '/:resourceType', handler: conditionalDelete, conditional: 'delete' },
  { method: 'PATCH', path: '/:resourceType', handler: conditionalPatch, conditional: 'patch' },
  { method: 'GET', path: '/:resourceType/:id/_history/:versionId', handler: vread, interaction: 'vread' },
  { method: 'GET', path: '/:resourceType/:id/_history', handler: history, interaction: 'history-instance' },
  { method: 'GET', path: '/:resourceType/:id/$validate', handler: validate, operation: 'validate' },
  { method: 'GET', path: '/:resourceType/:id/$meta', handler: metaRead, operation: 'meta' },
  { method: 'POST', path: '/:resourceType/:id/$meta', handler: metaRead, operation: 'meta' },
  { method: 'GET', path: '/:resourceType/:id/_history/:versionId/$meta', handler: metaRead, operation: 'meta' },
  { method: 'POST', path: '/:resourceType/:id/_history/:versionId/$meta', handler: metaRead, operation: 'meta' },
  { method: 'POST', path: '/:resourceType/:id/$meta-add', handler: metaAdd, operation: 'meta-add' },
  { method: 'POST', path: '/:resourceType/:id/$meta-delete', handler: metaDelete, operation: 'meta-delete' },
  { method: 'POST', path: '/:resourceType/:id/_history/:versionId/$meta-add', handler: metaAdd, operation: 'meta-add' },
  { method: 'POST', path: '/:resourceType/:id/_history/:versionId/$meta-delete', handler: metaDelete, operation: 'meta-delete' },
  { method: 'POST', path: '/:resourceType/:id/$validate', handler: validate, operation: 'validate' },
  { method: 'GET', path: '/Patient/:id/$everything', handler: everything, operation: 'everything' },
  { method: 'POST', path: '/Patient/:id/$everything', handler: everything, operation: 'everything' },
  { method: 'POST', path: '/Patient/:id/$emergency-access', handler: emergencyAccess, operation: 'emergency-access', auditPurposeOfUse: ['BTG'] },
  { method: 'POST', path: '/Patient/:id/$transfer', handler: transfer, operation: 'transfer' },
  { method: 'GET', path: '/Encounter/:id/$everything', handler: encounterEverything, operation: 'everything', definition: 'http://hl7.org/fhir/OperationDefinition/Encounter-everything' },
  { method: 'POST', path: '/Encounter/:id/$everything', handler: encounterEverything, operation: 'everything', definition: 'http://hl7.org/fhir/OperationDefinition/Encounter-everything' },
  { method: 'GET', path: '/Patient/:id/$summary', handler: patientSummary, operation: 'summary', definition: IPS_SUMMARY },
  { method: 'POST', path: '/Patient/:id/$summary', handler: patientSummary, operation: 'summary', definition: IPS_SUMMARY },
  { method: 'GET', path: '/Composition/:id/$document', handler: compositionDocument, operation: 'document' },
  { method: 'POST', path: '/Composition/:id/$document', handler: compositionDocument, operation: 'document' },
  ...terminologyRoutes('instance'),
  // (instance-level operation routes of other modules: add here)
  { method: 'GET', path: '/Patient/:id/$emergency-card', handler: emergencyCard, operation: 'emergency-card' },
  { method: 'POST', path: '/Patient/:id/$health-cards-issue', handler: healthCardsIssue, operation: 'health-cards-issue', definition: HEALTH_CARDS_ISSUE },
  { method: 'GET', path: '/Organization/:id/$bed-availability', handler: bedAvailability, operation: 'bed-availability' },
  { method: 'GET', path: '/:resourceType/:id', handler: read, interaction: 'read' },
  // After the literal `_history`, `$validate` and `$everything` routes of the same length.
  // Compartment search, GET [Compartment]/[id]/[type] and …/* (http.html#search), for each official CompartmentDefinition.
  ...compartmentTypes().flatMap((type): Route[] => [
    { method: 'GET', path: `/${type}/:compartmentId/*`, handler: compartmentSearchAll, compartment: compartmentUrl(type) },
    { method: 'GET', path: `/${type}/:compartmentId/:resourceType`, handler: search, compartment: compartmentUrl(type) },
  ]),
  { method: 'PUT', path: '/:resourceType/:id', handler: update, interaction: 'update' },
  { method: 'PATCH', path: '/:resourceType/:id', handler: patch, interaction: 'patch' },
  { method: 'DELETE', path: '/:resourceType/:id', handler: deleteResource, interaction: 'delete' },
];
