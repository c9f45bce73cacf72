import type { Location } from '@medplum/fhirtypes';
import { BED_STATUS, LOCATION_PHYSICAL_TYPE, OCCUPIED, UNOCCUPIED, bedKind, isBed, isFree, isInService } from '../../server/operations/beds';

const physical = (code: string, system: string | undefined = LOCATION_PHYSICAL_TYPE): Location['physicalType'] => ({
  coding: [{ ...(system === undefined ? {} : { system }), code }],
});
const bed = (extra: Partial<Location> = {}): Location => ({ resourceType: 'Location', physicalType: physical('bd'), ...extra });
const ward = (extra: Partial<Location> = {}): Location => ({ resourceType: 'Location', physicalType: physical('wa'), ...extra });
const roleCode = (code: string): Location['type'] => [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-RoleCode', code }] }];

describe('isBed', () => {
  it('is true for physicalType bd of the location-physical-type system, or of no system', () => {
    expect(isBed(bed())).toBe(true);
    expect(isBed({ resourceType: 'Location', physicalType: physical('bd', undefined) })).toBe(true);
    expect(isBed({ resourceType: 'Location', physicalType: { coding: [physical('wa')!.coding![0], physical('bd')!.coding![0]] } })).toBe(true);
  });

  it('is false for wards, rooms, a bd code of another system and Locations without physicalType', () => {
    expect(isBed(ward())).toBe(false);
    expect(isBed({ resourceType: 'Location', physicalType: physical('ro') })).toBe(false);
    expect(isBed({ resourceType: 'Location', physicalType: physical('bd', 'http://example.org/other') })).toBe(false);
    expect(isBed({ resourceType: 'Location', name: 'bed 1' })).toBe(false);
  });
});

describe('isFree', () => {
  it('is true for an active (or status-less) bed that is unoccupied or has no bed status', () => {
    expect(isFree(bed({ status: 'active', operationalStatus: UNOCCUPIED }))).toBe(true);
    expect(isFree(bed({ operationalStatus: UNOCCUPIED }))).toBe(true);
    expect(isFree(bed({ status: 'active' }))).toBe(true);
    expect(isFree(bed({ operationalStatus: { code: 'U' } }))).toBe(true);
  });

  it('is false when occupied, closed, in housekeeping, isolated or contaminated', () => {
    expect(isFree(bed({ operationalStatus: OCCUPIED }))).toBe(false);
    for (const code of ['C', 'H', 'I', 'K']) expect(isFree(bed({ operationalStatus: { system: BED_STATUS, code } }))).toBe(false);
  });

  it('is false for a suspended or inactive bed, a U of another code system, and anything that is not a bed', () => {
    expect(isFree(bed({ status: 'suspended', operationalStatus: UNOCCUPIED }))).toBe(false);
    expect(isFree(bed({ status: 'inactive' }))).toBe(false);
    expect(isFree(bed({ operationalStatus: { system: 'http://example.org/other', code: 'U' } }))).toBe(false);
    expect(isFree(ward({ operationalStatus: UNOCCUPIED }))).toBe(false);
  });
});

describe('isInService', () => {
  it('counts every bed but an inactive one as capacity', () => {
    expect(isInService(bed({ operationalStatus: OCCUPIED }))).toBe(true);
    expect(isInService(bed({ status: 'suspended' }))).toBe(true);
    expect(isInService(bed({ status: 'inactive', operationalStatus: UNOCCUPIED }))).toBe(false);
    expect(isInService(ward())).toBe(false);
  });
});

describe('bedKind', () => {
  it('is the bed\'s own first type coding code, lower-cased', () => {
    expect(bedKind(bed({ type: roleCode('ICU') }), [ward({ type: roleCode('PEDICU') })])).toBe('icu');
    expect(bedKind(bed({ type: [{ text: 'Maternity' }, { coding: [{ code: 'NICU' }] }] }), [])).toBe('nicu');
  });

  it('falls back to the type text, with case and spacing normalised', () => {
    expect(bedKind(bed({ type: [{ text: '  Burn   Unit ' }] }), [])).toBe('burn unit');
  });

  it('is inherited from the nearest Location it is partOf that has a type', () => {
    const room = { resourceType: 'Location', physicalType: physical('ro') } as Location;
    expect(bedKind(bed(), [room, ward({ type: roleCode('ICU') }), ward({ type: roleCode('HOSP') })])).toBe('icu');
  });

  it('is general when neither the bed nor any ancestor has a type', () => {
    expect(bedKind(bed(), [ward(), ward({ type: [{ text: '  ' }] })])).toBe('general');
  });
});
