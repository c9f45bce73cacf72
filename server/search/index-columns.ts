import { pairIndexColumns } from './pair-columns';
import { indexedParams } from './supported-parameters';

/**
 * The search index columns of one resource table. Storage adds them with
 * `ALTER TABLE ... ADD COLUMN IF NOT EXISTS` and indexes each with
 * `CREATE INDEX IF NOT EXISTS "<table>_<column>_idx" ON "<table>" USING <indexMethod> (<indexExpression ?? quoted column>)`.
 */
export interface IndexColumn {
  name: string;
  sqlType: string;
  /**
   * 'none': the column only filters rows that other conditions already narrowed (a rare
   * modifier such as token :text); every index costs every write of the type.
   */
  indexMethod: 'btree' | 'gin' | 'gist' | 'none';
  /** When the index needs more than the quoted column, e.g. an operator class. */
  indexExpression?: string;
}

export function indexColumns(resourceType: string): IndexColumn[] {
  const columns: IndexColumn[] = [];
  for (const param of indexedParams(resourceType).values()) columns.push(...param.handler.columns(param));
  columns.push(...pairIndexColumns(resourceType));
  return columns;
}

/** Extensions the index columns need (`CREATE EXTENSION IF NOT EXISTS`, before the indexes). */
export function requiredExtensions(): string[] {
  // gin_trgm_ops: indexed starts-with / contains over text (`:text`, string parameters).
  return ['pg_trgm'];
}
