import type pg from 'pg';
import { createHash } from 'node:crypto';
import type { Knex } from 'knex';
import { runSql, type Db } from './sql';

/**
 * A statement whose SQL depends only on its shape: knex builds it once per process with
 * placeholder values, and each run binds the real ones. For statements over every
 * resource type, where building the SQL costs about as much as running it. Sent as a
 * named prepared statement, so each connection also plans it once.
 *
 * Placeholders: `slot(name)` for a string (also inside a longer string, e.g. a
 * reference `Patient/<slot>`), a number, null or an array bound as one parameter;
 * `numberSlot(name)` where knex insists on a number (LIMIT).
 */
export type TemplateValues = Record<string, string | number | null | readonly string[]>;

export interface TemplateSlots {
  slot(name: string): string;
  arraySlot(name: string): string[];
  numberSlot(name: string): number;
}

interface Compiled {
  name: string;
  sql: string;
  bindings: unknown[];
}

const MARK = '\u0001';
const SLOT = /\u0001([^\u0001]+)\u0001/g;
/** Numbers no real LIMIT or ordinal comes near; each number slot gets its own. */
const NUMBER_BASE = 2_000_000_000;

const compiled = new Map<string, Compiled>();

export async function runTemplate<R extends Record<string, unknown>>(
  db: Db,
  key: string,
  build: (slots: TemplateSlots) => Knex.QueryBuilder,
  values: TemplateValues,
  /** How the columns' text is read (runSql). */
  types?: pg.CustomTypesConfig
): Promise<R[]> {
  let statement = compiled.get(key);
  if (!statement) {
    statement = compile(key, build);
    compiled.set(key, statement);
  }
  const bindings = statement.bindings.map((b) => bind(b, values));
  return (await runSql<R>(db, statement.name, statement.sql, bindings, types)).rows;
}

function compile(key: string, build: (slots: TemplateSlots) => Knex.QueryBuilder): Compiled {
  const numbers = new Map<number, string>();
  const slots: TemplateSlots = {
    slot: (name) => `${MARK}${name}${MARK}`,
    arraySlot: (name) => [`${MARK}${name}${MARK}`],
    numberSlot: (name) => {
      const value = NUMBER_BASE + numbers.size;
      numbers.set(value, name);
      return value;
    },
  };
  const { sql, bindings } = build(slots).toSQL().toNative();
  const marked = (bindings as unknown[]).map((b) => (typeof b === 'number' && numbers.has(b) ? `${MARK}${numbers.get(b)}${MARK}` : b));
  const hash = createHash('sha1').update(sql).digest('base64url').slice(0, 16);
  return { name: `${key.split(':')[0]}:${hash}`, sql, bindings: marked };
}

function bind(binding: unknown, values: TemplateValues): unknown {
  if (Array.isArray(binding) && binding.length === 1 && typeof binding[0] === 'string' && isWholeSlot(binding[0])) {
    return valueOf(binding[0].slice(1, -1), values);
  }
  if (typeof binding !== 'string' || !binding.includes(MARK)) return binding;
  if (isWholeSlot(binding)) return valueOf(binding.slice(1, -1), values);
  return binding.replace(SLOT, (_, name: string) => String(valueOf(name, values)));
}

function isWholeSlot(text: string): boolean {
  return text.startsWith(MARK) && text.endsWith(MARK) && text.indexOf(MARK, 1) === text.length - 1;
}

function valueOf(name: string, values: TemplateValues): unknown {
  if (!(name in values)) throw new Error(`No value for statement slot ${name}`);
  return values[name];
}
