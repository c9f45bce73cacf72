import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import type { OperationDefinition } from '@medplum/fhirtypes';
import type { ResourceStore } from '../storage/resource-store';

/** The server's own operations, described as OperationDefinition resources (one JSON file each). */
export const OPERATION_DEFINITION_DIR = path.join(__dirname, '..', '..', 'profiles', 'operations');

/** The canonical URL of one of our OperationDefinitions: where it can be read on this server. */
export function operationDefinitionUrl(fhirBase: string, code: string): string {
  return `${fhirBase}/OperationDefinition/${code}`;
}

/** The shipped definitions, each with its canonical URL on this server. */
export function shippedOperationDefinitions(fhirBase: string): (OperationDefinition & { id: string })[] {
  return readdirSync(OPERATION_DEFINITION_DIR)
    .filter((f) => f.endsWith('.json'))
    .sort()
    .map((f) => {
      const definition = JSON.parse(readFileSync(path.join(OPERATION_DEFINITION_DIR, f), 'utf8')) as OperationDefinition & { id: string };
      return { ...definition, url: operationDefinitionUrl(fhirBase, definition.id) };
    });
}

/**
 * Stores the shipped OperationDefinitions (through the write path, validated) so that the
 * CapabilityStatement's `operation.definition` URLs resolve; a definition already stored
 * with the same content is left alone, so restarts add no versions.
 */
export async function publishOperationDefinitions(store: ResourceStore, fhirBase: string): Promise<void> {
  for (const definition of shippedOperationDefinitions(fhirBase)) {
    const stored = await store.read('OperationDefinition', definition.id).catch(() => undefined);
    const { meta: _meta, ...current } = (stored?.resource ?? {}) as OperationDefinition;
    // Key order aside (storage keeps its own): the same content.
    if (isDeepStrictEqual(current, definition)) continue;
    await store.update(definition);
  }
}
