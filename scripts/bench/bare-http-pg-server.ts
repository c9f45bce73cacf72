import http from 'node:http';
import pg from 'pg';

/**
 * The floor for bench:cpu and the ceiling line of bench:crud: node:http and pg doing what
 * a FHIR read and create minimally must (one prepared SELECT and JSON out; JSON in, one
 * INSERT) on `/fhir/<Type>[/<id>]`, nothing else: no validation, history, index columns,
 * access control, audit or error handling.
 */
const pool = new pg.Pool({ connectionString: process.env.DATABASE_URL, max: 20 });
const TYPE = /^[A-Z][A-Za-z]+$/;

http
  .createServer(async (req, res) => {
    if (req.url === '/fhir/metadata' || req.url === '/readyz') {
      res.end('{}');
      return;
    }
    const [, , type, id] = (req.url ?? '').split('/');
    if (!TYPE.test(type ?? '')) {
      res.statusCode = 404;
      res.end('{}');
      return;
    }
    if (req.method === 'POST') {
      let text = '';
      for await (const chunk of req) text += chunk;
      const resource = { ...JSON.parse(text), id: crypto.randomUUID() };
      await pool.query({
        name: `insert:${type}`,
        text: `INSERT INTO "${type}" (id, version_id, last_updated, content) VALUES ($1, 1, now(), $2)`,
        values: [resource.id, JSON.stringify(resource)],
      });
      res.statusCode = 201;
      res.setHeader('content-type', 'application/fhir+json');
      res.setHeader('location', `/fhir/${type}/${resource.id}/_history/1`);
      res.end(JSON.stringify(resource));
      return;
    }
    const result = await pool.query({ name: `read:${type}`, text: `SELECT content FROM "${type}" WHERE id = $1`, values: [id] });
    res.setHeader('content-type', 'application/fhir+json');
    res.end(JSON.stringify(result.rows[0]?.content ?? {}));
  })
  .listen(Number(process.env.PORT), '127.0.0.1');
