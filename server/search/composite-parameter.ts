import { badRequest, isOperationOutcomeError } from '../core/outcome';
import { paramColumn } from './column-names';
import type { CompositeComponent } from './composite-components';
import { compileComponents } from './composite-components';
import type { ParamContext, ParameterType } from './parameter-type';
import { columnMissing } from './parameter-type';
import type { SearchParamDef } from './search-parameter-definitions';
import { splitUnescaped } from './search-value-escaping';

/**
 * Composite parameters (R4 search.html#composite): `code-value-quantity=
 * http://loinc.org|8480-6$gt100` matches when the parts match within the SAME element
 * of the composite's base expression (the Observation itself for `code-value-*`, one
 * Observation.component for `component-code-value-*`, either for `combo-*`).
 * One jsonb column per parameter: an array with one object per base element that has
 * a value for every component, `{"0": [...], "1": [...]}` (each component encoded
 * as its own type is: token entries, quantities {v,w,s,c,u}, date ranges in epoch ms,
 * folded strings, references), with a GIN `jsonb_path_ops` index; a search is one
 * `@?` jsonpath `$[*] ? (part0 && part1)`, so the index serves the token equalities.
 */
export interface CompositeFilter {
  kind: 'composite';
  code: string;
  /** The jsonpath over the column, with every comma-separated value ORed. */
  path: string;
}

const compiled = new WeakMap<SearchParamDef, CompositeComponent[] | null>();

function componentsOf(param: ParamContext): CompositeComponent[] | undefined {
  let components = compiled.get(param.def);
  if (components === undefined) {
    const resourceType = /^\(*([A-Za-z]+)/.exec(param.def.terms[0] ?? '')?.[1] ?? '';
    const baseTypes = param.expression.resultTypes;
    components = (baseTypes && compileComponents(resourceType, param.def, [...baseTypes])) || null;
    compiled.set(param.def, components);
  }
  return components ?? undefined;
}

function key(index: number): string {
  return `"${index}"`;
}

export const compositeParameter: ParameterType = {
  supports(param) {
    return componentsOf(param) !== undefined;
  },

  columns(param) {
    const name = paramColumn(param.def.code);
    return [{ name, sqlType: 'jsonb', indexMethod: 'gin', indexExpression: `"${name}" jsonb_path_ops` }];
  },

  extract(param, nodes, out, resource) {
    const components = componentsOf(param) ?? [];
    const elements: Record<string, unknown[]>[] = [];
    for (const node of nodes) {
      const element: Record<string, unknown[]> = {};
      let complete = true;
      components.forEach((component, i) => {
        const values = complete ? component.values(node, resource) : [];
        if (values.length === 0) complete = false;
        else element[String(i)] = values;
      });
      if (complete) elements.push(element);
    }
    out[paramColumn(param.def.code)] = elements.length > 0 ? JSON.stringify(elements) : null;
  },

  parse(param, modifier, values): CompositeFilter {
    const code = param.def.code;
    if (modifier !== undefined) throw badRequest(`Modifier :${modifier} is not supported for composite parameter ${code}`, code);
    const components = componentsOf(param) ?? [];
    const alternatives = values.map((raw) => {
      const parts = splitUnescaped(raw, '$');
      if (parts.length !== components.length) {
        throw badRequest(`${code} needs ${components.length} parts separated by '$', got '${raw}'`, code);
      }
      return parts.map((part, i) => {
        if (part === '') throw badRequest(`${code}: empty part ${i + 1} in '${raw}'`, code);
        try {
          return components[i].predicate(key(i), part);
        } catch (err) {
          // A component's own error names the component (value-quantity); the client sent the composite.
          if (isOperationOutcomeError(err) && err.status === 400) throw badRequest(`${code}, part ${i + 1}: ${err.message}`, code);
          throw err;
        }
      });
    });
    return { kind: 'composite', code, path: `$[*] ? (${alternatives.map((a) => `(${a.join(' && ')})`).join(' || ')})` };
  },

  // `@\\?` is jsonb's `@?`: knex reads a bare `?` as a binding.
  condition(param, filter, column) {
    if (filter.kind !== 'composite') throw new Error(`composite parameter cannot apply a ${filter.kind} filter`);
    return { sql: `${column(paramColumn(param.def.code))} @\\? ?::jsonpath`, bindings: [filter.path] };
  },

  missing(param, missing, column) {
    return columnMissing(column(paramColumn(param.def.code)), missing);
  },
};
