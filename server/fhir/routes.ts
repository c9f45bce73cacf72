import type { CapabilityStatementRestResourceInteraction, CapabilityStatementRestInteraction } from '@medplum/fhirtypes';
import { capabilityStatement } from './capabilities';
import { transactionOrBatch } from './bundle-interaction';
import { create } from './create';
import { conditionalDelete, deleteResource } from './delete';
import type { FhirHandler } from './fhir-request';
import { history } from './history';
import { patch } from './patch';
import { read } from './read';
import { search } from './search';
import { systemSearch } from './system-search';
import { PATIENT_COMPARTMENT_URL } from '../search/compartment-definitions';
import { conditionalUpdate, update } from './update';
import { vread } from './vread';
import { everything } from '../operations/everything';
import { validate } from '../operations/validate';

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
  conditional?: 'create' | 'update' | 'delete';
}

export const routes: Route[] = [
  {
    method: 'GET',
    path: '/metadata',
    handler: async (_req, ctx) => ({ status: 200, resource: capabilityStatement(routes, ctx.baseUrl) }),
  },
  { method: 'GET', path: '/', handler: systemSearch, systemInteraction: 'search-system' },
  { method: 'POST', path: '/', handler: transactionOrBatch, systemInteraction: ['transaction', 'batch'] },
  { method: 'POST', path: '/_search', handler: systemSearch, systemInteraction: 'search-system' },
  { method: 'GET', path: '/_history', handler: history, systemInteraction: 'history-system' },
  { method: 'GET', path: '/:resourceType/_history', handler: history, interaction: 'history-type' },
  { method: 'POST', path: '/:resourceType/_search', handler: search, interaction: 'search-type' },
  { method: 'POST', path: '/:resourceType/$validate', handler: validate, operation: 'validate' },
  // A literal type as first segment: the operation is only on that type (CapabilityStatement too).
  { method: 'GET', path: '/Patient/$everything', handler: everything, operation: 'everything' },
  { method: 'POST', path: '/Patient/$everything', handler: everything, operation: 'everything' },
  { method: 'GET', path: '/:resourceType', handler: search, interaction: 'search-type' },
  { method: 'POST', path: '/:resourceType', handler: create, interaction: 'create', conditional: 'create' },
  { method: 'PUT', path: '/:resourceType', handler: conditionalUpdate, conditional: 'update' },
  { method: 'DELETE', path: '/:resourceType', handler: conditionalDelete, conditional: 'delete' },
  { method: 'GET', path: '/:resourceType/:id/_history/:versionId', handler: vread, interaction: 'vread' },
  { method: 'GET', path: '/:resourceType/:id/_history', handler: history, interaction: 'history-instance' },
  { method: 'GET', path: '/:resourceType/:id/$validate', handler: validate, operation: 'validate' },
  { method: 'POST', path: '/:resourceType/:id/$validate', handler: validate, operation: 'validate' },
  { method: 'GET', path: '/Patient/:id/$everything', handler: everything, operation: 'everything' },
  { method: 'POST', path: '/Patient/:id/$everything', handler: everything, operation: 'everything' },
  { method: 'GET', path: '/:resourceType/:id', handler: read, interaction: 'read' },
  // After the literal `_history`, `$validate` and `$everything` routes of the same length.
  { method: 'GET', path: '/Patient/:compartmentId/:resourceType', handler: search, compartment: PATIENT_COMPARTMENT_URL },
  { method: 'PUT', path: '/:resourceType/:id', handler: update, interaction: 'update' },
  { method: 'PATCH', path: '/:resourceType/:id', handler: patch, interaction: 'patch' },
  { method: 'DELETE', path: '/:resourceType/:id', handler: deleteResource, interaction: 'delete' },
];
