import http from 'node:http';
import pg from 'pg';

/**
 * The floor for bench:cpu: node:http and pg doing what a FHIR read and create minimally
 * must (one prepared SELECT and JSON out; JSON in, one INSERT), nothing else.
 */
const pool = new pg.Pool({ connectionString: process.env.DATABASE_URL, max: 20 });

http
  .createServer(async (req, res) => {
    if (req.url === '/fhir/metadata') {
      res.end('{}');
      return;
    }
    if (req.method === 'POST') {
      let text = '';
      for await (const chunk of req) text += chunk;
      const resource = { ...JSON.parse(text), id: crypto.randomUUID() };
      await pool.query({
        name: 'insert',
        text: 'INSERT INTO "Patient" (id, version_id, last_updated, content) VALUES ($1, 1, now(), $2)',
        values: [resource.id, JSON.stringify(resource)],
      });
      res.statusCode = 201;
      res.setHeader('content-type', 'application/fhir+json');
      res.end(JSON.stringify(resource));
      return;
    }
    const id = req.url?.split('/').pop();
    const result = await pool.query({ name: 'read', text: 'SELECT content FROM "Patient" WHERE id = $1', values: [id] });
    res.setHeader('content-type', 'application/fhir+json');
    res.end(JSON.stringify(result.rows[0]?.content ?? {}));
  })
  .listen(Number(process.env.PORT), '127.0.0.1');
