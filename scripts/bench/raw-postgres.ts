import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { createBareTable } from './bare-table';

/**
 * The baseline: what PostgreSQL does with the same JSON and no server in between.
 * A bare `(id text primary key, content jsonb)` table per resource type (bare-table.ts), in the
 * benchmark database, with a pg Pool as large as the client concurrency.
 */
export class RawJsonbStore {
  private pool: pg.Pool | undefined;

  constructor(private readonly databaseUrl: string) {}

  private table(resourceType: string): string {
    return `raw_${resourceType.toLowerCase()}`;
  }

  async createTable(resourceType: string): Promise<void> {
    await createBareTable(this.use(1), this.table(resourceType));
  }

  /** (Re)sizes the pool to the concurrency of the next cell and opens its connections. */
  async resize(size: number): Promise<void> {
    await this.pool?.end();
    this.pool = this.newPool(size);
    const clients = await Promise.all(Array.from({ length: size }, () => this.pool!.connect()));
    clients.forEach((client) => client.release());
  }

  private use(size: number): pg.Pool {
    this.pool ??= this.newPool(size);
    return this.pool;
  }

  private newPool(size: number): pg.Pool {
    const pool = new pg.Pool({ connectionString: this.databaseUrl, max: size });
    // An idle connection ended by the server (the final DROP DATABASE … FORCE after a
    // Ctrl-C) must not crash the process; queries still report their own errors.
    pool.on('error', () => undefined);
    return pool;
  }

  /** INSERT with a fresh uuid, as the server's create does; the id is returned. */
  async insert(resourceType: string, json: string): Promise<string> {
    const id = randomUUID();
    await this.pool!.query(`INSERT INTO ${this.table(resourceType)} (id, content) VALUES ($1, $2)`, [id, json]);
    return id;
  }

  /** SELECT content by id, as text: like the server, the client gets JSON, not objects. */
  async select(resourceType: string, id: string): Promise<string> {
    const result = await this.pool!.query<{ content: string }>(`SELECT content::text AS content FROM ${this.table(resourceType)} WHERE id = $1`, [id]);
    if (result.rowCount !== 1) {
      throw new Error(`raw select ${id}: ${result.rowCount} rows`);
    }
    return result.rows[0].content;
  }

  async update(resourceType: string, id: string, json: string): Promise<void> {
    const result = await this.pool!.query(`UPDATE ${this.table(resourceType)} SET content = $2 WHERE id = $1`, [id, json]);
    if (result.rowCount !== 1) {
      throw new Error(`raw update ${id}: ${result.rowCount} rows`);
    }
  }

  /**
   * The raw equivalent of a search by reference: the first `limit` rows (by id) whose
   * `subject.reference` is `reference`, with an expression index so that it is an index scan.
   */
  async selectBySubject(resourceType: string, reference: string, limit: number): Promise<string[]> {
    const result = await this.pool!.query<{ content: string }>(
      `SELECT content::text AS content FROM ${this.table(resourceType)} WHERE (content->'subject'->>'reference') = $1 ORDER BY id LIMIT ${limit}`,
      [reference]
    );
    return result.rows.map((r) => r.content);
  }

  async indexSubject(resourceType: string): Promise<void> {
    const table = this.table(resourceType);
    await this.use(1).query(`CREATE INDEX IF NOT EXISTS ${table}_subject ON ${table} ((content->'subject'->>'reference'), id)`);
  }

  async close(): Promise<void> {
    await this.pool?.end();
    this.pool = undefined;
  }
}
