import { fittingName } from '../../server/storage/sql';

test('statement names over PostgreSQL’s 63 bytes become distinct names that fit, and shorter ones stay as they are', () => {
  const a = 'insert+:CoverageEligibilityRequest:ffeb0fca4a+AuditEvent:cb18bb5333';
  const b = 'insert+:CoverageEligibilityRequest:ffeb0fca4a+AuditEvent:cb18bb5999';
  expect(a.slice(0, 63)).toBe(b.slice(0, 63));
  expect(Buffer.byteLength(fittingName(a))).toBeLessThanOrEqual(63);
  expect(fittingName(a)).not.toBe(fittingName(b));
  expect(fittingName(a)).toBe(fittingName(a));
  expect(fittingName('insert:Patient:0123456789')).toBe('insert:Patient:0123456789');
});
