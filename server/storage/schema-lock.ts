/**
 * The key of the PostgreSQL advisory lock that serialises schema changes: migrations and
 * column sync at start (session lock), and the columns a custom SearchParameter adds
 * (transaction lock, in the transaction that writes the SearchParameter). Arbitrary but
 * fixed: "FHIRSC".
 */
export const SCHEMA_LOCK_KEY = 0x46484952_5343;
