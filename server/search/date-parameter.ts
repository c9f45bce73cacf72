import { badRequest } from '../core/outcome';
import { paramColumn } from './column-names';
import { dateRangeCondition } from './date-condition';
import { dateEnvelope, toTimestamptz } from './date-index-values';
import { parseDateSearchValue } from './date-search-value';
import type { ParameterType, SqlCondition } from './parameter-type';
import { columnMissing } from './parameter-type';
import { unescapeSearchValue } from './search-value-escaping';

/**
 * Date parameters: two timestamptz columns per parameter, the earliest start (`_lo`)
 * and latest end (`_hi`) of its values, each with a btree, so that every prefix is one
 * or two range conditions. Exact for single-valued parameters (nearly all of R4's);
 * several values count as the one range that spans them.
 */
const LO = 'lo';
const HI = 'hi';

export const dateParameter: ParameterType = {
  columns(param) {
    return [
      { name: paramColumn(param.def.code, LO), sqlType: 'timestamptz', indexMethod: 'btree' },
      { name: paramColumn(param.def.code, HI), sqlType: 'timestamptz', indexMethod: 'btree' },
    ];
  },

  extract(param, nodes, out) {
    const envelope = dateEnvelope(nodes);
    out[paramColumn(param.def.code, LO)] = envelope ? toTimestamptz(envelope.lo) : null;
    out[paramColumn(param.def.code, HI)] = envelope ? toTimestamptz(envelope.hi) : null;
  },

  parse(param, modifier, values) {
    if (modifier !== undefined) {
      throw badRequest(`Modifier :${modifier} is not supported for date parameter ${param.def.code}`, param.def.code);
    }
    return { kind: 'date', code: param.def.code, values: values.map((v) => parseDateSearchValue(param.def.code, unescapeSearchValue(v))) };
  },

  condition(param, filter, column): SqlCondition {
    if (filter.kind !== 'date') throw new Error(`date parameter cannot apply a ${filter.kind} filter`);
    const lo = column(paramColumn(param.def.code, LO));
    const hi = column(paramColumn(param.def.code, HI));
    const conditions = filter.values.map((v) => dateRangeCondition(lo, hi, v));
    return {
      sql: conditions.length === 1 ? conditions[0].sql : `(${conditions.map((c) => c.sql).join(' OR ')})`,
      bindings: conditions.flatMap((c) => c.bindings),
    };
  },

  missing(param, missing, column) {
    return columnMissing(column(paramColumn(param.def.code, LO)), missing);
  },

  // R4 leaves the order of ranges open; ascending by start and descending by end puts
  // the earliest and the latest first, as HAPI and Medplum do.
  sort(param, descending, column) {
    return descending
      ? `${column(paramColumn(param.def.code, HI))} DESC NULLS LAST`
      : `${column(paramColumn(param.def.code, LO))} ASC NULLS LAST`;
  },
};
