import type { JsonObject } from './json-shape';
import { isValueSetNotCodeSystem } from './required-bindings';

/**
 * Datatype rules the R4 text states but no FHIRPath invariant encodes.
 */

const absoluteUri = /^[A-Za-z][A-Za-z0-9+.-]*:/;

/** Coding.system "SHALL be an absolute reference" to a code system (R4 datatypes.html#Coding). */
export function codingSystemProblem(coding: JsonObject): string | undefined {
  const system = coding.system;
  if (typeof system !== 'string') {
    return undefined;
  }
  if (!absoluteUri.test(system)) {
    return `Coding.system must be an absolute URI, not '${system}'`;
  }
  if (isValueSetNotCodeSystem(system)) {
    return `Coding.system names a value set, not a code system ('${system}')`;
  }
  return undefined;
}

/** Attachment.size is "the number of bytes of data" (R4 datatypes.html#Attachment). */
export function attachmentSizeProblem(attachment: JsonObject): string | undefined {
  const { data, size } = attachment;
  if (typeof data !== 'string' || typeof size !== 'number') {
    return undefined;
  }
  const compact = data.replace(/\s+/g, '');
  const padding = compact.endsWith('==') ? 2 : compact.endsWith('=') ? 1 : 0;
  const bytes = (compact.length / 4) * 3 - padding;
  return bytes === size ? undefined : `Attachment.size ${size} does not match the ${bytes} bytes of data`;
}
