/**
 * R4 primitive datatypes: JSON type and lexical form.
 * Regexes are the ones in the R4 StructureDefinitions (https://hl7.org/fhir/R4/datatypes.html),
 * anchored; base64Binary is checked by hand because the published regex both misses `/`
 * (fixed in later builds) and backtracks badly on megabyte-long values.
 */

const YEAR = '([0-9]([0-9]([0-9][1-9]|[1-9]0)|[1-9]00)|[1-9]000)';
const TIME = '([01][0-9]|2[0-3]):[0-5][0-9]:([0-5][0-9]|60)(\\.[0-9]+)?';
const ZONE = '(Z|(\\+|-)((0[0-9]|1[0-3]):[0-5][0-9]|14:00))';

const stringPatterns: Record<string, RegExp> = {
  id: /^[A-Za-z0-9\-.]{1,64}$/,
  code: /^[^\s]+(\s[^\s]+)*$/,
  uri: /^\S*$/,
  url: /^\S*$/,
  canonical: /^\S*$/,
  oid: /^urn:oid:[0-2](\.(0|[1-9][0-9]*))+$/,
  uuid: /^urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/,
  date: new RegExp(`^${YEAR}(-(0[1-9]|1[0-2])(-(0[1-9]|[1-2][0-9]|3[0-1]))?)?$`),
  dateTime: new RegExp(`^${YEAR}(-(0[1-9]|1[0-2])(-(0[1-9]|[1-2][0-9]|3[0-1])(T${TIME}${ZONE})?)?)?$`),
  instant: new RegExp(`^${YEAR}-(0[1-9]|1[0-2])-(0[1-9]|[1-2][0-9]|3[0-1])T${TIME}${ZONE}$`),
  time: new RegExp(`^${TIME}$`),
};

const numberTypes = new Set(['decimal', 'integer', 'positiveInt', 'unsignedInt']);
const INT32_MIN = -2147483648;
const INT32_MAX = 2147483647;
/** R4: "strings SHALL NOT exceed 1MB". */
const MAX_STRING_LENGTH = 1024 * 1024;

export function expectedJsonType(fhirType: string): 'boolean' | 'number' | 'string' {
  if (fhirType === 'boolean') {
    return 'boolean';
  }
  return numberTypes.has(fhirType) ? 'number' : 'string';
}

/** Why `value` is not a valid `fhirType`, or undefined when it is. */
export function primitiveFormatError(fhirType: string, value: unknown): string | undefined {
  const jsonType = expectedJsonType(fhirType);
  if (typeof value !== jsonType) {
    return `Expected a JSON ${jsonType} for ${fhirType}, found ${describeJson(value)}`;
  }
  if (jsonType === 'number') {
    return numberError(fhirType, value as number);
  }
  if (jsonType === 'string') {
    return stringError(fhirType, value as string);
  }
  return undefined;
}

function numberError(fhirType: string, n: number): string | undefined {
  if (!Number.isFinite(n)) {
    return `Invalid ${fhirType}: ${n}`;
  }
  if (fhirType === 'decimal') {
    return undefined;
  }
  if (!Number.isInteger(n)) {
    return `Invalid ${fhirType}: ${n} is not an integer`;
  }
  if (n < INT32_MIN || n > INT32_MAX) {
    return `Invalid ${fhirType}: ${n} is outside the 32-bit integer range`;
  }
  if (fhirType === 'positiveInt' && n < 1) {
    return `Invalid positiveInt: ${n} is not positive`;
  }
  if (fhirType === 'unsignedInt' && n < 0) {
    return `Invalid unsignedInt: ${n} is negative`;
  }
  return undefined;
}

const nonWhitespace = /\S/;
/** U+0000, or half of a surrogate pair (with the u flag, whole pairs are one code point and do not match). */
const notStorableText = /\u0000|\p{Cs}/u;

function stringError(fhirType: string, s: string): string | undefined {
  if (s.length === 0) {
    return `Invalid ${fhirType}: empty strings are not allowed (leave the property out instead)`;
  }
  if (s.length > MAX_STRING_LENGTH) {
    return `Invalid ${fhirType}: longer than the maximum of 1 MB`;
  }
  if (notStorableText.test(s)) {
    // U+0000 is below the characters R4 allows in strings (datatypes.html#string), and PostgreSQL's jsonb cannot hold it;
    // an unpaired surrogate is not Unicode text at all.
    return `Invalid ${fhirType}: contains ${s.includes('\u0000') ? 'the character U+0000' : 'an unpaired UTF-16 surrogate'}, which is not text FHIR allows`;
  }
  if (fhirType === 'base64Binary') {
    return isBase64(s) ? undefined : `Invalid base64Binary: not valid base64 content`;
  }
  if (fhirType === 'string' || fhirType === 'markdown') {
    // \S is exactly what trim() keeps, without copying the string.
    return nonWhitespace.test(s) ? undefined : `Invalid ${fhirType}: must contain non-whitespace content`;
  }
  const pattern = stringPatterns[fhirType];
  if (pattern && !pattern.test(s)) {
    return `Invalid ${fhirType} format: '${truncate(s)}'`;
  }
  if ((fhirType === 'date' || fhirType === 'dateTime' || fhirType === 'instant') && !isRealCalendarDate(s)) {
    return `Invalid ${fhirType}: '${truncate(s)}' is not a calendar date`;
  }
  return undefined;
}

/** A-Z a-z 0-9 + / by char code: a regex per character made megabyte attachments slow. */
function isBase64Code(c: number): boolean {
  return (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || (c >= 48 && c <= 57) || c === 43 || c === 47;
}

/** Whitespace (line breaks in the official examples) is allowed between base64 characters. */
function isBase64(s: string): boolean {
  let count = 0;
  let padding = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 32 || c === 10 || c === 13 || c === 9) {
      continue;
    }
    if (c === 61 /* = */) {
      padding++;
    } else if (padding > 0 || !isBase64Code(c)) {
      return false;
    }
    count++;
  }
  return count > 0 && count % 4 === 0 && padding <= 2;
}

const daysInMonth = [31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

function isRealCalendarDate(s: string): boolean {
  if (s.length < 10) {
    return true;
  }
  const year = Number(s.slice(0, 4));
  const month = Number(s.slice(5, 7));
  const day = Number(s.slice(8, 10));
  if (month === 2 && day === 29) {
    return (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0;
  }
  return day <= daysInMonth[month - 1];
}

function describeJson(value: unknown): string {
  if (value === null) {
    return 'null';
  }
  return Array.isArray(value) ? 'an array' : `a ${typeof value}`;
}

function truncate(s: string): string {
  return s.length > 60 ? s.slice(0, 57) + '...' : s;
}
