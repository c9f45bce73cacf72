import type { Consent, ConsentProvision } from '@medplum/fhirtypes';
import { relativeReferenceId } from '../core/references';
import { dataPeriodBounds } from '../search/care-date';
import { parseSearchRequest } from '../search/parse-search-request';
import type { ResourceStore } from '../storage/resource-store';

/** What active Consents say about one principal: patients whose data it may not see, and patients it may. */
export interface ConsentRules {
  /** Patients whose data this principal may not see at all. */
  denied: string[];
  /** Denies narrowed by the provision's `class` (resource types) and / or `securityLabel`: only that part of the patient's data is removed. */
  deniedParts?: ConsentPart[];
  /** Patients whose data this principal may see (outside its own boundary). */
  permitted: string[];
  /** Permits narrowed the same way: only that part of the patient's data is granted. */
  permittedParts?: ConsentPart[];
  /** When a provision of these Consents starts or ends next (epoch ms): the rules hold until then at most. */
  changesAt?: number;
  /** Of `permitted`, the patients a break-the-glass grant opens: what is read of them is audited with purpose BTG. */
  emergency?: string[];
}

/**
 * Part of a patient's data a provision denies or permits: resources of `types` (any type
 * when absent) carrying one of `labels` (`system|code`; any when absent), and when
 * `resources` is given only those (`Type/id`, the provision's `data` of meaning instance),
 * and when `codes` is given only those holding one of these Codings.
 */
export interface ConsentPart {
  patient: string;
  types?: string[];
  labels?: string[];
  resources?: string[];
  /** The provision's `code` (`system|code`): only resources with one of these Codings anywhere in them. */
  codes?: string[];
  /** The provision's `dataPeriod`: only resources whose care took place within it (care-date.ts). */
  period?: { start?: string; end?: string };
}

const RESOURCE_TYPES_SYSTEM = 'http://hl7.org/fhir/resource-types';

export const NO_CONSENT_RULES: ConsentRules = { denied: [], permitted: [] };
const MAX_CONSENTS = 1000;
const PURPOSE_SYSTEM = 'http://terminology.hl7.org/CodeSystem/v3-ActReason';

/**
 * The active Consents that name `actors` (the user's fhirUser and organisations) or one
 * of `purposes` (the request's purpose of use) in a provision, read fresh for every
 * request so that a change applies to the next one
 * (https://hl7.org/fhir/R4/consent.html#provision):
 *  - a `deny` provision naming one of the actors, or one of the purposes, removes the
 *    Consent's patient for this principal everywhere;
 *  - a `permit` provision naming one of the actors grants that patient to them.
 * A provision with a `class` of resource types (system resource-types) applies only to
 * resources of those types, one with a `securityLabel` only to resources carrying one of
 * those labels, one with `data` of meaning `instance` only to those resources, one with a
 * `code` only to resources with one of its Codings anywhere in them, one with a
 * `dataPeriod` only to resources whose care took place within it (care-date.ts; all that
 * are given: all). What this server cannot narrow by (a class of another system, a code
 * without a system, `data` of another meaning, an unreadable dataPeriod) makes a deny
 * remove the whole patient and a permit grant nothing: never less denied, never more
 * granted, than asked.
 * A deny wins over a permit for the same patient, except a permit for purpose BTG: the
 * time-limited grant of a break-the-glass (operations/emergency-access.ts), which exists
 * to reach past a deny. A provision counts only within its `period` (and its parents'),
 * so such a grant ends by itself.
 */
export async function consentRules(store: ResourceStore, actors: readonly string[], purposes: readonly string[], now: Date = new Date()): Promise<ConsentRules> {
  if (actors.length === 0 && purposes.length === 0) return NO_CONSENT_RULES;
  const consents: Consent[] = [];
  const find = async (query: Record<string, string>): Promise<void> => {
    const request = parseSearchRequest('Consent', { status: 'active', _count: String(MAX_CONSENTS), ...query }, { strict: true, defaultCount: MAX_CONSENTS, maxCount: MAX_CONSENTS });
    consents.push(...((await store.search(request)).resources as Consent[]));
  };
  if (actors.length > 0) await find({ actor: actors.join(',') });
  if (purposes.length > 0) await find({ purpose: purposes.map((p) => `${PURPOSE_SYSTEM}|${p}`).join(',') });
  const denied = new Set<string>();
  const parts: ConsentPart[] = [];
  const permittedParts: ConsentPart[] = [];
  const permitted = new Set<string>();
  const emergency = new Set<string>();
  const changesAt = nextBoundary(consents.map((c) => c.provision), now.getTime());
  for (const consent of consents) {
    const patient = relativeReferenceId(consent.patient?.reference, 'Patient');
    if (!patient) continue;
    for (const provision of provisions(consent.provision, now.getTime())) {
      const names = (provision.actor ?? []).some((a) => actors.includes(a.reference?.reference ?? ''));
      const forPurpose = (provision.purpose ?? []).some((p) => p.system === PURPOSE_SYSTEM && purposes.includes(p.code ?? ''));
      const part = consentPart(patient, provision);
      if (provision.type === 'deny' && (names || forPurpose)) {
        if (part === 'unknown' || part === undefined) denied.add(patient);
        else parts.push(part);
      }
      if (provision.type === 'permit' && names) {
        const breakTheGlass = (provision.purpose ?? []).some((p) => p.system === PURPOSE_SYSTEM && p.code === 'BTG');
        if (breakTheGlass) emergency.add(patient);
        else if (part === undefined) permitted.add(patient);
        else if (part !== 'unknown') permittedParts.push(part);
      }
    }
  }
  const narrowed = parts.filter((p) => !denied.has(p.patient) && !emergency.has(p.patient));
  const granted = permittedParts.filter((p) => !denied.has(p.patient));
  if (denied.size === 0 && narrowed.length === 0 && permitted.size === 0 && granted.length === 0 && emergency.size === 0) {
    return changesAt === undefined ? NO_CONSENT_RULES : { ...NO_CONSENT_RULES, changesAt };
  }
  return {
    denied: [...denied].filter((p) => !emergency.has(p)),
    ...(narrowed.length > 0 ? { deniedParts: narrowed } : {}),
    permitted: [...new Set([...[...permitted].filter((p) => !denied.has(p)), ...emergency])],
    ...(granted.length > 0 ? { permittedParts: granted } : {}),
    ...(emergency.size > 0 ? { emergency: [...emergency] } : {}),
    ...(changesAt === undefined ? {} : { changesAt }),
  };
}

/**
 * The part of the patient's data a provision narrowed by class, security label or data is
 * about; undefined when it is about the whole patient, 'unknown' when it is narrowed by
 * something this server cannot tell resources apart by.
 */
function consentPart(patient: string, provision: ConsentProvision): ConsentPart | 'unknown' | undefined {
  const classes = provision.class ?? [];
  const labels = (provision.securityLabel ?? []).map((c) => `${c.system ?? ''}|${c.code ?? ''}`);
  const data = provision.data ?? [];
  if (classes.some((c) => c.system !== RESOURCE_TYPES_SYSTEM || !c.code)) return 'unknown';
  const period = provision.dataPeriod ? dataPeriodBounds(provision.dataPeriod) : undefined;
  if (provision.dataPeriod && period === undefined) return 'unknown';
  const codings = (provision.code ?? []).flatMap((concept) => concept.coding ?? []);
  // A code given as text alone, or a Coding without system or code, cannot be looked for.
  if ((provision.code ?? []).some((concept) => (concept.coding ?? []).length === 0) || codings.some((c) => !c.system || !c.code)) return 'unknown';
  const codes = codings.map((c) => `${c.system}|${c.code}`);
  const resources = data.map((d) => (d.meaning === 'instance' ? /^([A-Za-z]+\/[A-Za-z0-9\-.]{1,64})(\/_history\/.*)?$/.exec(d.reference?.reference ?? '')?.[1] : undefined));
  if (resources.some((r) => r === undefined)) return 'unknown';
  if (classes.length === 0 && labels.length === 0 && resources.length === 0 && codes.length === 0 && period === undefined) return undefined;
  return {
    patient,
    ...(classes.length > 0 ? { types: classes.map((c) => c.code as string) } : {}),
    ...(labels.length > 0 ? { labels } : {}),
    ...(resources.length > 0 ? { resources: resources as string[] } : {}),
    ...(codes.length > 0 ? { codes } : {}),
    ...(period ? { period } : {}),
  };
}

/** The first period start or end after `now` among the provisions (nested ones included), if any. */
function nextBoundary(roots: readonly (ConsentProvision | undefined)[], now: number): number | undefined {
  let next: number | undefined;
  const visit = (provision: ConsentProvision | undefined): void => {
    if (!provision) return;
    for (const bound of [provision.period?.start, provision.period?.end]) {
      const at = bound ? Date.parse(bound) : NaN;
      if (at > now && (next === undefined || at < next)) next = at;
    }
    (provision.provision ?? []).forEach(visit);
  };
  roots.forEach(visit);
  return next;
}

/** The provision and its nested provisions in force at `now`, each as a rule of its own. */
function provisions(root: ConsentProvision | undefined, now: number): ConsentProvision[] {
  if (!root || !inForce(root.period, now)) return [];
  return [root, ...(root.provision ?? []).flatMap((p) => provisions(p, now))];
}

/** Whether `now` is within a Period (an open end is no limit; an unparseable bound counts as not in force). */
function inForce(period: ConsentProvision['period'], now: number): boolean {
  if (!period) return true;
  const start = period.start ? Date.parse(period.start) : -Infinity;
  const end = period.end ? Date.parse(period.end) : Infinity;
  if (Number.isNaN(start) || Number.isNaN(end)) return false;
  return start <= now && now <= end;
}
