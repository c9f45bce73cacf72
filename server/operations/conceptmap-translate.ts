import type { Coding, ConceptMap, Parameters, ParametersParameter } from '@medplum/fhirtypes';
import { badRequest, notFound } from '../core/outcome';
import type { FhirHandler } from '../fhir/fhir-request';
import type { ResourceStore } from '../storage/resource-store';
import { searchEveryPage } from '../storage/search-every-page';
import { translate, type TranslationMatch } from '../terminology/concept-map-translation';
import { officialConceptMaps } from '../terminology/official-terminology';
import { OperationInput } from './operation-parameters';
import { latestByCanonical } from './terminology-operation-support';

/**
 * `ConceptMap/$translate` and `ConceptMap/[id]/$translate` (R4 conceptmap-operation-translate):
 * `system` + `code` (+ `version`), a `coding`, or every coding of a `codeableConcept`,
 * through one map (the instance, `url` with `conceptMapVersion`, or a `conceptMap` in
 * the body) or, without one, every map held here or official whose groups start from
 * that system (`reverse`: end in it); `source` and `target` (value sets) narrow the maps,
 * `targetsystem` the matches. The answer: `result` (a match that is not `unmatched` or
 * `disjoint`), a `message` when there is none, and each `match` (equivalence, concept,
 * source map).
 */
export const conceptMapTranslate: FhirHandler = async (req, ctx) => {
  const input = OperationInput.of('translate', req.body, req.query);
  const codings = codingsToTranslate(input);
  const reverse = input.boolean('reverse') ?? false;
  const targetSystem = input.string('targetsystem');
  const maps = await mapsToUse(input, req.id, ctx.repo, codings, reverse);
  const matches: TranslationMatch[] = codings.flatMap((c) =>
    translate(maps, { system: c.system as string, code: c.code as string, version: c.version, targetSystem, reverse })
  );
  const result = matches.some((m) => m.equivalence !== 'unmatched' && m.equivalence !== 'disjoint');
  const parameters: Parameters = {
    resourceType: 'Parameters',
    parameter: [
      { name: 'result', valueBoolean: result },
      ...(result ? [] : [{ name: 'message', valueString: `No mapping of ${codings.map((c) => `${c.system}#${c.code}`).join(', ')} in ${maps.length} map(s)` }]),
      ...matches.map(
        (m): ParametersParameter => ({
          name: 'match',
          part: [
            { name: 'equivalence', valueCode: m.equivalence },
            ...(m.concept.code ? [{ name: 'concept', valueCoding: m.concept }] : []),
            ...(m.source ? [{ name: 'source', valueUri: m.source }] : []),
          ],
        })
      ),
    ],
  };
  return { status: 200, resource: parameters };
};

function codingsToTranslate(input: OperationInput): Coding[] {
  const concept = input.codeableConcept('codeableConcept');
  const given = concept ? concept.coding ?? [] : [input.coding('coding') ?? { system: input.string('system'), code: input.string('code'), version: input.string('version') }];
  const codings = given.filter((c) => c.code);
  if (codings.length === 0) throw badRequest('$translate needs code and system, a coding or a codeableConcept', 'code');
  for (const c of codings) if (!c.system) throw badRequest(`$translate: ${c.code} needs its system`, 'system');
  return codings;
}

async function mapsToUse(input: OperationInput, id: string | undefined, repo: ResourceStore, codings: Coding[], reverse: boolean): Promise<ConceptMap[]> {
  if (id !== undefined) return [(await repo.read('ConceptMap', id)).resource as ConceptMap];
  const given = input.resource('conceptMap');
  if (given) {
    if (given.resourceType !== 'ConceptMap') throw badRequest('parameter "conceptMap" must be a ConceptMap', 'conceptMap');
    return [given as ConceptMap];
  }
  const url = input.string('url');
  if (url) {
    const version = input.string('conceptMapVersion');
    const canonical = version && !url.includes('|') ? `${url}|${version}` : url;
    const found = (await latestByCanonical<ConceptMap>(repo, 'ConceptMap', canonical)) ?? officialConceptMaps().find((m) => m.url === url && (!version || m.version === version));
    if (!found) throw notFound(`ConceptMap ${canonical} is not known here`);
    return [found];
  }
  // Every map from (or, reversed, to) the systems of the codings, stored here or official.
  const systems = [...new Set(codings.map((c) => c.system as string))];
  const parameter = reverse ? 'target-system' : 'source-system';
  const stored = (await searchEveryPage(repo, 'ConceptMap', { [parameter]: systems.join(',') })) as ConceptMap[];
  const official = officialConceptMaps().filter((m) => (m.group ?? []).some((g) => systems.includes((reverse ? g.target : g.source) ?? '')));
  const source = input.string('source');
  const target = input.string('target');
  const [from, to] = reverse ? [target, source] : [source, target];
  return [...stored, ...official].filter(
    (m) => (!from || (m.sourceUri ?? m.sourceCanonical) === from) && (!to || (m.targetUri ?? m.targetCanonical) === to)
  );
}
