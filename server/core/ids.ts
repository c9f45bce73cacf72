import { randomBytes } from 'node:crypto';

/** R4 id datatype: https://hl7.org/fhir/R4/datatypes.html#id */
const ID_PATTERN = /^[A-Za-z0-9\-.]{1,64}$/;

export function isValidId(id: string): boolean {
  return ID_PATTERN.test(id);
}

/** Random bytes drawn 4 KiB at a time: one call into the CSPRNG per 256 ids, not per id. */
let pool = Buffer.alloc(0);
let offset = 0;
function randomSlice(): Buffer {
  if (offset + 16 > pool.length) {
    pool = randomBytes(4096);
    offset = 0;
  }
  offset += 16;
  return pool.subarray(offset - 16, offset);
}

/**
 * A UUID version 7 (RFC 9562): 48 bits of Unix milliseconds, then 74 random bits. Ids
 * that grow with time make the default search order (by id) creation order, and land
 * new rows at the right edge of every table's primary key index instead of all over it.
 */
export function newId(): string {
  const bytes = Buffer.allocUnsafe(16);
  randomSlice().copy(bytes);
  const ms = Date.now();
  bytes.writeUIntBE(ms, 0, 6);
  bytes[6] = 0x70 | (bytes[6] & 0x0f);
  bytes[8] = 0x80 | (bytes[8] & 0x3f);
  const hex = bytes.toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}
