import { APPEND_ONLY_TYPES, CHANGE_INTERACTIONS } from '../core/append-only';
import type { CapabilityStatement, CapabilityStatementRestResource } from '@medplum/fhirtypes';
import { searchParamsForCapability } from '../search/capability';
import { searchParameterGeneration } from '../search/custom-search-parameter-registry';
import { searchIncludeValues, searchRevIncludeValues } from '../search/include-capability';
import { isResourceType, resourceTypes } from '../validation/structure-definitions';
import { r4DefinitionUrl } from '../validation/official-profiles';
import type { Route } from './routes';
import { oauthEndpoints } from '../auth/oauth-endpoints';
import { operationDefinitionUrl } from '../operations/operation-definitions';
import { nonEmpty } from '../core/non-empty';
import { storedProfilesGeneration, supportedProfiles } from '../storage/stored-profiles';

const SOFTWARE_VERSION: string = (require('../../package.json') as { version: string }).version;

/** Operations the FHIR specification itself defines: their canonical OperationDefinitions are HL7's. */
export const OFFICIAL_OPERATION_DEFINITIONS: Record<string, string> = {
  validate: 'http://hl7.org/fhir/OperationDefinition/Resource-validate',
  everything: 'http://hl7.org/fhir/OperationDefinition/Patient-everything',
  find: 'http://hl7.org/fhir/OperationDefinition/List-find',
  document: 'http://hl7.org/fhir/OperationDefinition/Composition-document',
  match: 'http://hl7.org/fhir/OperationDefinition/Patient-match',
  lastn: 'http://hl7.org/fhir/OperationDefinition/Observation-lastn',
  stats: 'http://hl7.org/fhir/OperationDefinition/Observation-stats',
  expand: 'http://hl7.org/fhir/OperationDefinition/ValueSet-expand',
  lookup: 'http://hl7.org/fhir/OperationDefinition/CodeSystem-lookup',
  subsumes: 'http://hl7.org/fhir/OperationDefinition/CodeSystem-subsumes',
  translate: 'http://hl7.org/fhir/OperationDefinition/ConceptMap-translate',
  submit: 'http://hl7.org/fhir/OperationDefinition/Claim-submit',
  export: 'http://hl7.org/fhir/uv/bulkdata/OperationDefinition/export',
  meta: 'http://hl7.org/fhir/OperationDefinition/Resource-meta',
  'meta-add': 'http://hl7.org/fhir/OperationDefinition/Resource-meta-add',
  'meta-delete': 'http://hl7.org/fhir/OperationDefinition/Resource-meta-delete',
};

const cache = new Map<string, CapabilityStatement>();

/** What a CapabilityStatement and a TerminologyCapabilities say about this running server. */
export function thisInstance(baseUrl: string, description: string) {
  return {
    status: 'active' as const,
    date: new Date().toISOString(),
    publisher: 'fhir-server',
    kind: 'instance' as const,
    software: { name: 'fhir-server', version: SOFTWARE_VERSION },
    implementation: { description, url: baseUrl },
  };
}

/**
 * Built from the route table and the search module's list of working parameters:
 * what is not routed is not claimed. https://hl7.org/fhir/R4/capabilitystatement.html
 */
export function capabilityStatement(routes: readonly Route[], baseUrl: string): CapabilityStatement {
  // Custom SearchParameters change the searchParam lists, stored profiles the supportedProfile lists: one statement per generation of each.
  const key = `${searchParameterGeneration()} ${storedProfilesGeneration()} ${baseUrl}`;
  const cached = cache.get(key);
  if (cached) {
    return cached;
  }
  const interactions = unique(routes.map((r) => r.interaction));
  const conditional = new Set(routes.map((r) => r.conditional));

  const resource = resourceTypes.map((type): CapabilityStatementRestResource => {
    const appendOnly = APPEND_ONLY_TYPES.has(type);
    return {
      type: type as CapabilityStatementRestResource['type'],
      profile: r4DefinitionUrl(type),
      // Profiles that $validate applies, and writes that claim them are checked against.
      ...nonEmpty('supportedProfile', supportedProfiles(type)),
      interaction: interactions.filter((code) => !(appendOnly && CHANGE_INTERACTIONS.has(code))).map((code) => ({ code })),
      versioning: 'versioned',
      readHistory: true,
      updateCreate: !appendOnly,
      conditionalCreate: conditional.has('create'),
      conditionalRead: 'full-support',
      conditionalUpdate: !appendOnly && conditional.has('update'),
      conditionalDelete: !appendOnly && conditional.has('delete') ? 'single' : 'not-supported',
      // FHIR JSON has no empty arrays: a type without any of these leaves the property out.
      ...nonEmpty('searchInclude', searchIncludeValues(type)),
      ...nonEmpty('searchRevInclude', revincludeCapability(type)),
      ...nonEmpty(
        'searchParam',
        searchParamsForCapability(type).map((p) => ({
          name: p.name,
          ...(p.definition ? { definition: p.definition } : {}),
          type: p.type as NonNullable<CapabilityStatementRestResource['searchParam']>[number]['type'],
          ...(p.documentation ? { documentation: p.documentation } : {}),
        }))
      ),
      ...nonEmpty(
        'operation',
        operationsOf(routes.filter((r) => routeAppliesTo(r, type)), baseUrl)
      ),
    };
  });

  const statement: CapabilityStatement = {
    resourceType: 'CapabilityStatement',
    ...thisInstance(baseUrl, 'FHIR R4 server on PostgreSQL'),
    // Bulk Data Access 2.0's server CapabilityStatement, which the $export routes implement.
    instantiates: ['http://hl7.org/fhir/uv/bulkdata/CapabilityStatement/bulk-data'],
    fhirVersion: '4.0.1',
    format: ['json', 'xml', 'application/fhir+json', 'application/fhir+xml', 'application/json', 'application/xml'],
    patchFormat: ['application/json-patch+json', 'application/fhir+json', 'application/fhir+xml'],
    rest: [
      {
        mode: 'server',
        // Where websocket Subscriptions bind (R4 subscription.html, http/subscription-sockets.ts).
        extension: [{ url: 'http://hl7.org/fhir/StructureDefinition/capabilitystatement-websocket', valueUri: `${baseUrl.replace(/^http/, 'ws')}/websocket` }],
        security: smartSecurity(baseUrl),
        resource,
        interaction: unique(routes.flatMap((r) => r.systemInteraction)).map((code) => ({ code })),
        ...(routes.some((r) => r.systemInteraction === 'search-system') ? { searchParam: systemSearchParams() } : {}),
        ...nonEmpty('operation', operationsOf(routes.filter(isSystemOperation), baseUrl)),
        compartment: unique(routes.map((r) => r.compartment)),
      },
    ],
  };
  cache.clear();
  cache.set(key, statement);
  return statement;
}

/**
 * SMART App Launch §"Conformance": the service coding and the oauth-uris extension, for
 * clients that read the CapabilityStatement rather than .well-known/smart-configuration.
 */
function smartSecurity(baseUrl: string): NonNullable<CapabilityStatement['rest']>[number]['security'] {
  // The FHIR base is PUBLIC_URL/fhir, and PUBLIC_URL is the issuer.
  const endpoints = oauthEndpoints(baseUrl.replace(/\/fhir\/?$/, ''));
  return {
    cors: true,
    service: [
      {
        coding: [{ system: 'http://terminology.hl7.org/CodeSystem/restful-security-service', code: 'SMART-on-FHIR', display: 'SMART-on-FHIR' }],
        text: 'OAuth 2.0 / SMART App Launch',
      },
    ],
    extension: [
      {
        url: 'http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris',
        extension: (['authorize', 'token', 'introspect', 'revoke'] as const).map((name) => ({ url: name, valueUri: endpoints[name] })),
      },
    ],
  };
}

/** What a search across every type can use: the parameters every type has. */
function systemSearchParams(): NonNullable<CapabilityStatementRestResource['searchParam']> {
  const [first, ...rest] = resourceTypes.map((type) => searchParamsForCapability(type));
  return first.filter((p) => rest.every((params) => params.some((q) => q.name === p.name))).map((p) => ({
    name: p.name,
    ...(p.definition ? { definition: p.definition } : {}),
    type: p.type as NonNullable<CapabilityStatementRestResource['searchParam']>[number]['type'],
  }));
}

/** A route whose path starts with a literal type (`/Patient/$everything`) serves only that type; `/$export` none. */
function routeAppliesTo(route: Route, type: string): boolean {
  const first = route.path.split('/')[1] ?? '';
  return !first.startsWith('$') && (!isResourceType(first) || first === type);
}

/** An operation on the server's base (`/$export`). */
function isSystemOperation(route: Route): boolean {
  return (route.path.split('/')[1] ?? '').startsWith('$');
}

/** The listed operations of these routes, each once, with its canonical definition. */
function operationsOf(routes: readonly Route[], baseUrl: string): { name: string; definition: string }[] {
  const byName = new Map<string, string>();
  for (const route of routes) {
    if (!route.operation || route.unlisted || byName.has(route.operation)) continue;
    byName.set(route.operation, route.definition ?? OFFICIAL_OPERATION_DEFINITIONS[route.operation] ?? operationDefinitionUrl(baseUrl, route.operation));
  }
  return [...byName].map(([name, definition]) => ({ name, definition }));
}

function unique<T>(values: (T | undefined)[]): T[] {
  return [...new Set(values.filter((v): v is T => v !== undefined))];
}

/** `_revinclude=*` reads every `Source:param` that can point to the type. */
function revincludeCapability(type: string): string[] {
  const values = searchRevIncludeValues(type);
  return values.length === 0 ? [] : ['*', ...values];
}
