import type { List, Resource } from '@medplum/fhirtypes';
import { notFound } from '../core/outcome';
import type { FhirHandler } from '../fhir/fhir-request';
import { FUNCTIONAL_LIST_NAMES, functionalList } from '../search/functional-lists';
import { searchEveryPage } from '../storage/search-every-page';
import { OperationInput } from './operation-parameters';

const LIST_USE = 'http://terminology.hl7.org/CodeSystem/list-example-use-codes';

/**
 * `List/$find?patient=42&name=$current-allergies` (R4 list-operation-find): the
 * functional list of a patient as a List, made at the time of the call from the same
 * searches `_list=$current-allergies` runs (search/functional-lists.ts), through the
 * caller's store, so it holds only what the caller may search. A patient the caller
 * cannot read, or a list this server does not define, is a 404, as the operation says.
 */
export const listFind: FhirHandler = async (req, ctx) => {
  const input = OperationInput.of('find', req.body, req.query);
  const patientId = input.requiredString('patient');
  const given = input.requiredString('name');
  const name = given.startsWith('$') ? given : `$${given}`;
  const list = functionalList(name);
  if (!list) throw notFound(`No functional list '${given}' on this server; it defines ${FUNCTIONAL_LIST_NAMES.join(', ')}`);
  await ctx.repo.read('Patient', patientId);
  const items: Resource[] = [];
  for (const type of Object.keys(list.queries)) {
    items.push(...(await searchEveryPage(ctx.repo, type as Resource['resourceType'], { patient: `Patient/${patientId}`, _list: name, _sort: '_lastUpdated' })));
  }
  const found: List = {
    resourceType: 'List',
    status: 'current',
    mode: 'snapshot',
    title: list.title,
    code: { coding: [{ system: LIST_USE, code: list.code }] },
    subject: { reference: `Patient/${patientId}` },
    date: new Date().toISOString(),
    ...(items.length > 0
      ? { entry: items.map((r) => ({ item: { reference: `${r.resourceType}/${r.id}` } })) }
      : { emptyReason: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/list-empty-reason', code: 'nilknown' }] } }),
  };
  return { status: 200, resource: found };
};
