import http from 'node:http';
import Koa from 'koa';
import { securityHeaders } from '../../server/http/security-headers';
import { startTestServer, type TestServer } from '../support/test-server';
import { authorizeUrl, CookieBrowser, registerApp } from '../auth/html-flow';

let server: TestServer;

beforeAll(async () => {
  server = await startTestServer({ AUTH_REQUIRED: 'true' });
  await registerApp(server, { id: 'app' });
}, 60000);

afterAll(async () => {
  await server?.stop();
});

function expectCommonHeaders(headers: Headers): void {
  expect(headers.get('X-Content-Type-Options')).toBe('nosniff');
  expect(headers.get('Referrer-Policy')).toBe('no-referrer');
  expect(headers.get('X-Frame-Options')).toBe('DENY');
  expect(headers.get('Cross-Origin-Resource-Policy')).toBe('cross-origin');
  expect(headers.get('Cross-Origin-Opener-Policy')).toBeNull();
  expect(headers.get('X-Powered-By')).toBeNull();
}

describe('security headers', () => {
  it('are on a FHIR response, with a CSP that allows nothing and no HSTS over http', async () => {
    const res = await fetch(`${server.base}/metadata`);
    expect(res.status).toBe(200);
    expectCommonHeaders(res.headers);
    const csp = res.headers.get('Content-Security-Policy') ?? '';
    expect(csp).toContain("default-src 'none'");
    expect(csp).toContain("frame-ancestors 'none'");
    expect(res.headers.get('Strict-Transport-Security')).toBeNull();
  });

  it('are on error responses too (a 401 OperationOutcome)', async () => {
    const res = await fetch(`${server.base}/Patient`);
    expect(res.status).toBe(401);
    expectCommonHeaders(res.headers);
    expect(res.headers.get('Content-Security-Policy')).toContain("default-src 'none'");
  });

  it('are on the login page, whose CSP is the authorization server’s own (inline styles, its form targets)', async () => {
    const page = await new CookieBrowser().get(authorizeUrl(server));
    expect(page.status).toBe(200);
    expect(page.html).toContain('<form');
    expectCommonHeaders(page.headers);
    const csp = page.headers.get('Content-Security-Policy') ?? '';
    expect(csp).toContain("style-src 'unsafe-inline'");
    expect(csp).toContain("form-action 'self'");
    expect(csp).toContain("frame-ancestors 'none'");
  });

  it('leave CORS for browser apps intact on the token endpoint', async () => {
    const res = await fetch(`${server.url}/auth/token`, {
      method: 'POST',
      headers: { Origin: 'https://app.example', 'Content-Type': 'application/x-www-form-urlencoded' },
      body: 'grant_type=client_credentials',
    });
    expect(res.headers.get('Access-Control-Allow-Origin')).toBe('https://app.example');
    expect(res.headers.get('Cross-Origin-Resource-Policy')).toBe('cross-origin');
  });

  it('let a browser app send the FHIR headers it needs (preflight) and read the ones it is answered with', async () => {
    const sent = ['Authorization', 'Prefer', 'If-Match', 'If-None-Exist', 'X-Purpose-Of-Use', 'X-Security-Context'];
    const preflight = await fetch(`${server.base}/Binary`, {
      method: 'OPTIONS',
      headers: { Origin: 'https://app.example', 'Access-Control-Request-Method': 'POST', 'Access-Control-Request-Headers': sent.join(',') },
    });
    const allowed = (preflight.headers.get('Access-Control-Allow-Headers') ?? '').toLowerCase().split(/\s*,\s*/);
    for (const header of sent) expect(allowed).toContain(header.toLowerCase());
    const read = await fetch(`${server.base}/metadata`, { headers: { Origin: 'https://app.example' } });
    const exposed = (read.headers.get('Access-Control-Expose-Headers') ?? '').toLowerCase().split(/\s*,\s*/);
    for (const header of ['Location', 'ETag', 'Last-Modified', 'X-Security-Context']) expect(exposed).toContain(header.toLowerCase());
  });

  it('include HSTS only when the public URL is https', async () => {
    const hsts = async (publicUrl: string): Promise<string | null> => {
      const app = new Koa();
      app.use(securityHeaders(publicUrl));
      app.use((ctx) => {
        ctx.body = { ok: true };
      });
      const listener = http.createServer(app.callback()).listen(0, '127.0.0.1');
      await new Promise((r) => listener.once('listening', r));
      try {
        const { port } = listener.address() as { port: number };
        return (await fetch(`http://127.0.0.1:${port}/`)).headers.get('Strict-Transport-Security');
      } finally {
        listener.close();
      }
    };
    expect(await hsts('https://fhir.hospital.example')).toMatch(/max-age=31536000; includeSubDomains/);
    expect(await hsts('http://localhost:8080')).toBeNull();
  });
});
