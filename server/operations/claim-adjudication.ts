import type {
  Claim,
  ClaimItem,
  ClaimResponse,
  ClaimResponseItemAdjudication,
  CodeableConcept,
  Coverage,
  Money,
} from '@medplum/fhirtypes';
import { isOperationOutcomeError } from '../core/outcome';
import type { ResourceStore } from '../storage/resource-store';

const ADJUDICATION = 'http://terminology.hl7.org/CodeSystem/adjudication';
const PAYMENT_TYPE = 'http://terminology.hl7.org/CodeSystem/ex-paymenttype';
/** This server's reasons for refusing a claim (ClaimResponse.error.code has an example binding only). */
export const CLAIM_ERROR_SYSTEM = 'urn:fhir-server:claim-error';

/**
 * The ClaimResponse for a stored Claim, decided by its focal Coverage (docs/claims.md):
 *
 * - the Coverage must exist, be `active`, cover the Claim's patient (`beneficiary`), be in
 *   force on the day of service (`billablePeriod.start`, else `created`), and, when the
 *   Claim names an insurer, list it as a `payor`; otherwise the outcome is `error` with
 *   one `error` per failed rule, and nothing is paid;
 * - else the outcome is `complete`: every item is eligible for its net amount (`net`, or
 *   `unitPrice × quantity × factor`), the benefit is that amount less the Coverage's
 *   copay (`costToBeneficiary` of type `copay`, once per claim, from the first items),
 *   and a claim (`use` = claim) gets a payment of the total benefit; a pre-authorization
 *   gets a `preAuthRef`, a pre-determination no payment.
 */
export async function adjudicate(claim: Claim & { id: string }, store: ResourceStore, now: Date): Promise<ClaimResponse> {
  const coverageReference = focalCoverage(claim);
  const coverage = coverageReference ? await readCoverage(store, coverageReference) : undefined;
  const errors = coverageErrors(claim, coverageReference, coverage);
  const insurer = (claim.insurer ?? coverage?.payor?.[0] ?? { display: 'unknown insurer' }) as ClaimResponse['insurer'];
  const response: ClaimResponse = {
    resourceType: 'ClaimResponse',
    status: 'active',
    type: claim.type,
    ...(claim.subType ? { subType: claim.subType } : {}),
    use: claim.use,
    patient: claim.patient,
    created: now.toISOString(),
    insurer,
    requestor: claim.provider,
    request: { reference: `Claim/${claim.id}` },
    outcome: errors.length > 0 ? 'error' : 'complete',
    disposition: errors.length > 0 ? 'Claim not accepted: see the errors' : 'Claim adjudicated against the coverage',
    ...(claim.insurance?.length ? { insurance: claim.insurance.map((i) => ({ sequence: i.sequence, focal: i.focal, coverage: i.coverage })) } : {}),
  };
  if (errors.length > 0) {
    response.error = errors.map((code) => ({ code }));
    return response;
  }
  const currency = claim.total?.currency ?? claim.item?.map((i) => i.net?.currency ?? i.unitPrice?.currency).find((c) => c) ?? 'USD';
  let copayLeft = copay(coverage);
  let submittedTotal = 0;
  let benefitTotal = 0;
  const items = (claim.item ?? []).map((item) => {
    const net = itemNet(item);
    const adjudication: ClaimResponseItemAdjudication[] = [];
    if (net === undefined) {
      adjudication.push({ category: category('submitted'), reason: { text: 'no amount on the item' } });
    } else {
      const benefit = Math.max(0, net - copayLeft);
      copayLeft -= net - benefit;
      submittedTotal += net;
      benefitTotal += benefit;
      adjudication.push(
        { category: category('submitted'), amount: money(net, currency) },
        { category: category('eligible'), amount: money(net, currency) },
        ...(net > benefit ? [{ category: category('copay'), amount: money(net - benefit, currency) }] : []),
        { category: category('benefit'), amount: money(benefit, currency) }
      );
    }
    return { itemSequence: item.sequence, adjudication };
  });
  if (items.length > 0) response.item = items;
  response.total = [
    { category: category('submitted'), amount: money(submittedTotal, currency) },
    { category: category('benefit'), amount: money(benefitTotal, currency) },
  ];
  if (claim.use === 'claim') {
    response.payment = {
      type: { coding: [{ system: PAYMENT_TYPE, code: 'complete', display: 'Complete' }] },
      amount: money(benefitTotal, currency),
      date: now.toISOString().slice(0, 10),
    };
  } else if (claim.use === 'preauthorization') {
    response.preAuthRef = `preauth-${claim.id}`;
  }
  return response;
}

function focalCoverage(claim: Claim): string | undefined {
  const insurance = claim.insurance ?? [];
  return (insurance.find((i) => i.focal) ?? insurance[0])?.coverage?.reference;
}

async function readCoverage(store: ResourceStore, reference: string): Promise<Coverage | undefined> {
  const match = /^(?:.*\/)?Coverage\/([A-Za-z0-9.-]{1,64})(?:\/_history\/\d+)?$/.exec(reference);
  if (!match) return undefined;
  try {
    return (await store.read('Coverage', match[1])).resource as Coverage;
  } catch (err) {
    // Absent or deleted: the claim is refused for it, not failed.
    if (isOperationOutcomeError(err) && (err.status === 404 || err.status === 410)) return undefined;
    throw err;
  }
}

function coverageErrors(claim: Claim, reference: string | undefined, coverage: Coverage | undefined): CodeableConcept[] {
  if (!reference) return [error('no-coverage', 'The Claim names no Coverage (insurance.coverage)')];
  if (!coverage) return [error('coverage-not-found', `${reference} does not exist on this server`)];
  const errors: CodeableConcept[] = [];
  if (coverage.status !== 'active') errors.push(error('coverage-inactive', `The Coverage is ${coverage.status}, not active`));
  if (localId(coverage.beneficiary?.reference) !== localId(claim.patient?.reference)) {
    errors.push(error('coverage-other-patient', "The Coverage's beneficiary is not the Claim's patient"));
  }
  const day = (claim.billablePeriod?.start ?? claim.created ?? '').slice(0, 10);
  const start = coverage.period?.start?.slice(0, 10);
  const end = coverage.period?.end?.slice(0, 10);
  if (day && ((start && day < start) || (end && day > end))) {
    errors.push(error('coverage-period', `The Coverage is not in force on ${day}`));
  }
  if (claim.insurer?.reference && !(coverage.payor ?? []).some((p) => localId(p.reference) === localId(claim.insurer?.reference))) {
    errors.push(error('insurer-not-payor', `${claim.insurer.reference} is not a payor of the Coverage`));
  }
  return errors;
}

/** `Type/id` of a reference, whatever base it is written with. */
function localId(reference: string | undefined): string | undefined {
  const match = reference ? /([A-Za-z]+\/[A-Za-z0-9.-]{1,64})(?:\/_history\/\d+)?$/.exec(reference) : null;
  return match?.[1];
}

function itemNet(item: ClaimItem): number | undefined {
  if (typeof item.net?.value === 'number') return item.net.value;
  if (typeof item.unitPrice?.value !== 'number') return undefined;
  return round(item.unitPrice.value * (item.quantity?.value ?? 1) * (item.factor ?? 1));
}

function copay(coverage: Coverage | undefined): number {
  const cost = coverage?.costToBeneficiary?.find((c) => c.type?.coding?.some((code) => code.code === 'copay'));
  return cost?.valueMoney?.value ?? 0;
}

function category(code: string): CodeableConcept {
  return { coding: [{ system: ADJUDICATION, code }] };
}

function money(value: number, currency: string): Money {
  return { value: round(value), currency: currency as Money['currency'] };
}

function round(value: number): number {
  return Math.round(value * 100) / 100;
}

function error(code: string, text: string): CodeableConcept {
  return { coding: [{ system: CLAIM_ERROR_SYSTEM, code }], text };
}
