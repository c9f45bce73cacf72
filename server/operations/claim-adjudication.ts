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
import { searchEveryPage } from '../storage/search-every-page';
import { escapeSearchValue } from '../search/search-value-escaping';

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
 *   `unitPrice × quantity × factor`); from it, in this order, the patient pays what is
 *   left of the Coverage's yearly `deductible`, its `copay` (once per claim), and its
 *   coinsurance (`copaypct`, a percentage of the rest), all within what is left of its
 *   yearly `maxoutofpocket`; the benefit is what remains (the `costToBeneficiary` types
 *   of R4's coverage-copay-type). A claim (`use` = claim) gets
 *   a payment of the total benefit; a pre-authorization gets a `preAuthRef`, a
 *   pre-determination no payment; neither uses up the deductible.
 *
 * The deductible and out-of-pocket maximum left are the Coverage's less what the patient's
 * complete claim responses on that Coverage adjudicated the same calendar year took; claims on
 * one Coverage are adjudicated one at a time (a transaction lock), so two at once cannot
 * both take the same deductible.
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
  const shares = costShares(coverage as Coverage & { id: string });
  const yearly = shares.deductible > 0 || shares.outOfPocketMax !== undefined;
  const paid = yearly ? await paidThisYear(store, claim, coverage as Coverage & { id: string }, now) : { deductible: 0, outOfPocket: 0 };
  let deductibleLeft = Math.max(0, round(shares.deductible - paid.deductible));
  let outOfPocketLeft = shares.outOfPocketMax === undefined ? Infinity : Math.max(0, round(shares.outOfPocketMax - paid.outOfPocket));
  let copayLeft = shares.copay;
  const totals = { submitted: 0, deductible: 0, copay: 0, benefit: 0 };
  const items = (claim.item ?? []).map((item) => {
    const net = itemNet(item);
    const adjudication: ClaimResponseItemAdjudication[] = [];
    if (net === undefined) {
      adjudication.push({ category: category('submitted'), reason: { text: 'no amount on the item' } });
    } else {
      // The patient's share, in this order, each within what the out-of-pocket maximum leaves.
      const deductible = Math.min(net, deductibleLeft, outOfPocketLeft);
      const copay = Math.min(net - deductible, copayLeft, outOfPocketLeft - deductible);
      const coinsurance = Math.min(round(((net - deductible - copay) * shares.coinsurancePercent) / 100), outOfPocketLeft - deductible - copay);
      const benefit = round(net - deductible - copay - coinsurance);
      deductibleLeft = round(deductibleLeft - deductible);
      copayLeft = round(copayLeft - copay);
      outOfPocketLeft = round(outOfPocketLeft - deductible - copay - coinsurance);
      totals.submitted += net;
      totals.deductible += deductible;
      totals.copay += copay;
      totals.benefit += benefit;
      adjudication.push(
        { category: category('submitted'), amount: money(net, currency) },
        { category: category('eligible'), amount: money(net, currency) },
        ...(deductible > 0 ? [{ category: category('deductible'), amount: money(deductible, currency) }] : []),
        ...(copay > 0 ? [{ category: category('copay'), amount: money(copay, currency) }] : []),
        // eligpercent: the share of what is left after deductible and copay that the insurer pays.
        ...(shares.coinsurancePercent > 0 ? [{ category: category('eligpercent'), value: 100 - shares.coinsurancePercent }] : []),
        { category: category('benefit'), amount: money(benefit, currency) }
      );
    }
    return { itemSequence: item.sequence, adjudication };
  });
  if (items.length > 0) response.item = items;
  response.total = [
    { category: category('submitted'), amount: money(totals.submitted, currency) },
    ...(totals.deductible > 0 ? [{ category: category('deductible'), amount: money(totals.deductible, currency) }] : []),
    ...(totals.copay > 0 ? [{ category: category('copay'), amount: money(totals.copay, currency) }] : []),
    { category: category('benefit'), amount: money(totals.benefit, currency) },
  ];
  if (claim.use === 'claim') {
    response.payment = {
      type: { coding: [{ system: PAYMENT_TYPE, code: 'complete', display: 'Complete' }] },
      amount: money(totals.benefit, currency),
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

const COPAY_TYPE = 'http://terminology.hl7.org/CodeSystem/coverage-copay-type';

/** The Coverage's cost shares this adjudication applies (`costToBeneficiary` by type; a coding without system is taken as R4's). */
function costShares(coverage: Coverage): { deductible: number; copay: number; coinsurancePercent: number; outOfPocketMax?: number } {
  const of = (code: string) =>
    coverage.costToBeneficiary?.find((c) => c.type?.coding?.some((coding) => coding.code === code && (coding.system === undefined || coding.system === COPAY_TYPE)));
  const percent = of('copaypct')?.valueQuantity?.value ?? 0;
  const max = of('maxoutofpocket')?.valueMoney?.value;
  return {
    deductible: Math.max(0, of('deductible')?.valueMoney?.value ?? 0),
    copay: Math.max(0, of('copay')?.valueMoney?.value ?? 0),
    coinsurancePercent: Math.min(100, Math.max(0, percent)),
    ...(typeof max === 'number' ? { outOfPocketMax: Math.max(0, max) } : {}),
  };
}

/**
 * What the patient paid this calendar year on this Coverage: the `deductible` totals, and
 * the out-of-pocket (submitted less benefit) of their complete, active claim responses
 * (use claim) on it. For a claim, the Coverage is locked for the transaction first
 * (matchCriteria's lock), so concurrent claims on it are adjudicated one after the other.
 */
async function paidThisYear(store: ResourceStore, claim: Claim, coverage: Coverage & { id: string }, now: Date): Promise<{ deductible: number; outOfPocket: number }> {
  if (claim.use === 'claim') await store.matchCriteria('Coverage', `_id=${coverage.id}`, true);
  const year = now.getUTCFullYear();
  const responses = await searchEveryPage<ClaimResponse>(store, 'ClaimResponse', {
    // The reference as one search value (a comma in it would be an OR).
    patient: escapeSearchValue(claim.patient?.reference ?? ''),
    use: 'claim',
    outcome: 'complete',
    status: 'active',
    created: [`ge${year}-01-01`, `lt${year + 1}-01-01`],
  });
  const paid = { deductible: 0, outOfPocket: 0 };
  const total = (response: ClaimResponse, code: string): number =>
    response.total?.find((t) => t.category?.coding?.some((c) => c.system === ADJUDICATION && c.code === code))?.amount?.value ?? 0;
  for (const response of responses) {
    const focal = (response.insurance ?? []).find((i) => i.focal) ?? response.insurance?.[0];
    if (localId(focal?.coverage?.reference) !== `Coverage/${coverage.id}`) continue;
    paid.deductible += total(response, 'deductible');
    paid.outOfPocket += total(response, 'submitted') - total(response, 'benefit');
  }
  return paid;
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
