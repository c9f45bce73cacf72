import http from 'node:http';
import Koa from 'koa';
import pino from 'pino';
import { errorOutcome } from '../../server/http/error-outcome';
import { requestContext } from '../../server/http/request-context';

test('an unexpected error is a 500 OperationOutcome with the request id and no stack trace, and the log keeps it', async () => {
  const lines: string[] = [];
  const logger = pino({ level: 'info' }, { write: (line: string) => lines.push(line) });
  const app = new Koa();
  app.silent = true;
  app.use(requestContext(logger));
  app.use(errorOutcome());
  app.use(() => {
    throw new Error('database password is hunter2');
  });
  const server = http.createServer(app.callback()).listen(0, '127.0.0.1');
  await new Promise((r) => server.once('listening', r));
  try {
    const { port } = server.address() as { port: number };
    const res = await fetch(`http://127.0.0.1:${port}/fhir/Patient`, { headers: { 'X-Request-Id': 'req-500' } });
    const text = await res.text();
    expect(res.status).toBe(500);
    expect(JSON.parse(text).resourceType).toBe('OperationOutcome');
    expect(text).toContain('req-500');
    expect(text).not.toContain('hunter2');
    expect(text).not.toMatch(/at .*\.ts:\d+/);
    const logged = lines.join('\n');
    expect(logged).toContain('hunter2');
    expect(logged).toContain('req-500');
    expect(logged).toContain('"stack"');
  } finally {
    server.close();
  }
});
