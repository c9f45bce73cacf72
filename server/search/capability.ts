import { isResourceType } from '../validation/structure-definitions';
import { LIST_PARAMETER_DOCUMENTATION } from './functional-lists';
import { indexedParams } from './supported-parameters';

export interface CapabilitySearchParam {
  name: string;
  definition?: string;
  type: string;
  documentation?: string;
}

const RESOURCE_PARAMS = 'http://hl7.org/fhir/SearchParameter/Resource-';

/** Exactly the search parameters that work end to end on a type, for the CapabilityStatement. */
export function searchParamsForCapability(resourceType: string): CapabilitySearchParam[] {
  if (!isResourceType(resourceType)) return [];
  const result: CapabilitySearchParam[] = [
    { name: '_id', definition: `${RESOURCE_PARAMS}id`, type: 'token', documentation: 'Logical id of this artifact' },
    {
      name: '_lastUpdated',
      definition: `${RESOURCE_PARAMS}lastUpdated`,
      type: 'date',
      documentation: 'When the resource version last changed',
    },
  ];
  result.push({
    name: '_list',
    type: 'special',
    documentation: LIST_PARAMETER_DOCUMENTATION,
  });
  result.push({
    name: '_filter',
    type: 'special',
    documentation:
      'R4 search_filter.html over this type\'s parameters (chains too): eq ne co sw ew gt lt ge le sa eb ap po pr ss sb in ni re, and / or / not (), and before or; filters inside a path are not supported',
  });
  for (const { def, handler } of indexedParams(resourceType).values()) {
    result.push({ name: def.code, definition: def.url || undefined, type: def.type, documentation: handler.documentation ?? def.description });
  }
  return result;
}
