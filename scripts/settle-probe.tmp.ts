import pino from 'pino';
import { loadConfig } from '../server/config';
import { startServer } from '../server/start';
import { createKnex } from '../server/storage/database';
async function main() {
  const admin = createKnex('postgres://postgres@127.0.0.1:5432/postgres', 1);
  await admin.raw('DROP DATABASE IF EXISTS settle_probe'); await admin.raw('CREATE DATABASE settle_probe'); 
  const config = loadConfig({ PORT: '18555', HOST: '127.0.0.1', DATABASE_URL: 'postgres://postgres@127.0.0.1:5432/settle_probe', AUTH_REQUIRED: 'false', RATE_LIMIT: 'false', AUDIT: process.env.AUDIT ?? 'true' });
  const server = await startServer(config, pino({ level: 'silent' }));
  const base = 'http://127.0.0.1:18555/fhir';
  const p = await (await fetch(`${base}/Patient`, { method: 'POST', headers: { 'content-type': 'application/fhir+json' }, body: '{"resourceType":"Patient"}' })).json() as any;
  for (let i = 0; i < 300; i++) await (await fetch(`${base}/Patient/${p.id}`)).text();
  for (const q of ['Patient/' + p.id, `AuditEvent?patient=Patient/${p.id}&_count=5`]) {
    const t: number[] = [];
    for (let i = 0; i < 30; i++) { const s = performance.now(); await (await fetch(`${base}/${q}`)).text(); t.push(performance.now() - s); }
    t.sort((a, b) => a - b); console.log(q.slice(0, 20), 'p50', t[15].toFixed(1), 'max', t[29].toFixed(1));
  }
  await server.stop(); await admin.raw('DROP DATABASE IF EXISTS settle_probe WITH (FORCE)'); await admin.destroy();
}
main();
