import { toTypedValue } from '@medplum/core';
import { evaluateInvariant, type InvariantContext } from '../../server/validation/invariants';
import { nativeInvariant } from '../../server/validation/native-invariants';
import { resourceTypes, typeDefinitions } from '../../server/validation/structure-definitions';
import { getTypeSchema, type Invariant, type PropertySchema, type TypeSchema } from '../../server/validation/type-schemas';

/** Every compiled schema of R4: resources, datatypes and the backbone elements inside them. */
function allSchemas(): TypeSchema[] {
  const seen = new Set<TypeSchema>();
  const visit = (schema: TypeSchema | undefined): void => {
    if (!schema || seen.has(schema)) return;
    seen.add(schema);
    for (const p of schema.properties.values()) if (p.kind === 'complex' && p.schema) visit(p.schema());
  };
  for (const type of resourceTypes) visit(getTypeSchema(type));
  for (const sd of typeDefinitions) if (sd.kind === 'complex-type') visit(getTypeSchema(sd.derivation === 'constraint' ? (sd.name as string) : (sd.type as string)));
  return [...seen];
}

/** The ways an element can appear in JSON: absent, under each of its keys, or as a primitive's `_key` extension alone. */
function elementStates(schema: TypeSchema, elementName: string): Record<string, unknown>[] {
  const properties = [...schema.properties.values()].filter((p) => p.elementName === elementName);
  const states: Record<string, unknown>[] = [{}];
  for (const p of properties) {
    states.push({ [p.key]: presentValue(p) });
    if (p.kind === 'primitive') states.push({ [`_${p.key}`]: p.isArray ? [{ id: 'x' }] : { id: 'x' } });
  }
  return states;
}

function presentValue(p: PropertySchema): unknown {
  const one = p.kind === 'primitive' ? (p.typeCode === 'boolean' ? true : ['integer', 'decimal', 'positiveInt', 'unsignedInt'].includes(p.typeCode) ? 1 : 'x') : { id: 'x' };
  return p.isArray ? [one] : one;
}

const context: InvariantContext = {
  resource: toTypedValue({ resourceType: 'Basic', code: { text: 'x' } }),
  rootResource: toTypedValue({ resourceType: 'Basic', code: { text: 'x' } }),
};

/** Each combination of the states of the elements an invariant names. */
function combinations(schema: TypeSchema, invariant: Invariant): Record<string, unknown>[] {
  // The first element of each term's path: what the native check looks at.
  const names = [...invariant.expression.matchAll(/(?:^|\bor )([a-z][A-Za-z0-9]*)/g)].map((m) => m[1]);
  let values: Record<string, unknown>[] = [{}];
  for (const name of new Set(names)) {
    values = values.flatMap((v) => elementStates(schema, name).map((s) => ({ ...v, ...s })));
  }
  return values;
}

/** A type's own invariants, and those an element declares, in the context of the element's value (as the walker checks them). */
const natives = allSchemas()
  .flatMap((schema) => [
    ...schema.invariants.map((invariant) => ({ schema, invariant })),
    ...[...schema.properties.values()]
      .filter((p) => p.kind === 'complex' && p.schema)
      .flatMap((p) => p.invariants.map((invariant) => ({ schema: (p.schema as () => TypeSchema)(), invariant }))),
  ])
  .filter(({ schema, invariant }) => nativeInvariant(invariant.expression, schema));

test('the simple invariants of the resources Synthea and the HL7 examples carry most are checked without the FHIRPath engine', () => {
  const keys = new Set(natives.map((n) => `${n.schema.fhirPathType} ${n.invariant.key}`));
  for (const key of ['Observation obs-6', 'Observation obs-7', 'Quantity qty-3', 'Attachment att-1', 'ContactPoint cpt-2', 'SimpleQuantity sqty-1', 'TimingRepeat tim-1', 'Condition con-4']) {
    expect(keys).toContain(key);
  }
  // exists() and count() make a value of nothing: not a path that stays empty.
  expect(keys).not.toContain('TimingRepeat tim-4');
});

test('every invariant checked natively gives the FHIRPath engine’s answer for every combination of its elements being absent, present or an extension alone', () => {
  let compared = 0;
  let decided = 0;
  const disagreements: string[] = [];
  for (const { schema, invariant } of natives) {
    for (const value of combinations(schema, invariant)) {
      const native = nativeInvariant(invariant.expression, schema)?.(value);
      const engine = evaluateInvariant(invariant, value, schema.fhirPathType, context);
      compared++;
      if (native === undefined) continue;
      decided++;
      if (native !== engine) disagreements.push(`${schema.fhirPathType} ${invariant.key} on ${JSON.stringify(value)}: native ${native}, engine ${String(engine)}`);
    }
  }
  expect(disagreements).toEqual([]);
  expect(natives.length).toBeGreaterThan(50);
  expect(decided).toBeGreaterThan(compared / 2);
});
