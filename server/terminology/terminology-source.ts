import type { CodeSystem, ValueSet } from '@medplum/fhirtypes';
import { officialTerminology } from './official-terminology';
import type { TerminologySource } from './value-set-expansion';

/** The latest stored ValueSet or CodeSystem of a canonical (`url` or `url|version`), through whichever read path the caller uses. */
export type FindStored = <T extends ValueSet | CodeSystem>(resourceType: T['resourceType'], canonical: string) => Promise<T | undefined>;

/** Value sets and code systems stored here first, then the official R4 ones (in the version asked, when one is). */
export function terminologySource(findStored: FindStored): TerminologySource {
  return {
    async valueSet(canonical) {
      const stored = await findStored<ValueSet>('ValueSet', canonical);
      if (stored) return stored;
      const [url, version] = canonical.split('|');
      const official = officialTerminology().valueSets.get(url);
      return official && (version === undefined || official.version === version) ? official : undefined;
    },
    async codeSystem(url, version) {
      const stored = await findStored<CodeSystem>('CodeSystem', version ? `${url}|${version}` : url);
      if (stored) return stored;
      const official = officialTerminology().codeSystems.get(url);
      return official && (version === undefined || official.version === version) ? official : undefined;
    },
  };
}
