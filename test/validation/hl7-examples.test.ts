import { isBlocking, validateResource } from '../../server/validation/validate-resource';
import { INVALID_HL7_EXAMPLES, hl7ExampleFiles, readHl7Example } from '../support/hl7-examples';

/** The official R4 examples are valid: every rejection is a bug or a listed exception. */
describe('the official HL7 R4 examples', () => {
  test.each(hl7ExampleFiles())('%s passes validation', (file) => {
    const errors = validateResource(readHl7Example(file))
      .filter(isBlocking)
      .map((i) => `${i.expression?.[0]}: ${i.diagnostics}`);
    if (file in INVALID_HL7_EXAMPLES) {
      // The exception must still be needed, or it leaves the list.
      expect(errors.length).toBeGreaterThan(0);
    } else {
      expect(errors).toEqual([]);
    }
  });
});
