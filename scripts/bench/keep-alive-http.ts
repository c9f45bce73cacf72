import http from 'node:http';

export interface HttpResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/**
 * A minimal keep-alive HTTP/1.1 client on node:http (undici is not a dependency here,
 * and the global fetch costs noticeably more CPU per request, which on two cores is
 * CPU taken from the server under test). One pool of `sockets` connections per client.
 */
export class KeepAliveClient {
  private readonly agent: http.Agent;
  private readonly base: URL;

  constructor(baseUrl: string, sockets: number) {
    this.base = new URL(baseUrl);
    this.agent = new http.Agent({ keepAlive: true, maxSockets: sockets, maxFreeSockets: sockets });
  }

  request(method: string, path: string, body?: string, headers: Record<string, string> = {}): Promise<HttpResponse> {
    return new Promise((resolve, reject) => {
      const requestHeaders: Record<string, string | number> = { accept: 'application/fhir+json', ...headers };
      if (body !== undefined) {
        requestHeaders['content-type'] = 'application/fhir+json';
        requestHeaders['content-length'] = Buffer.byteLength(body);
      }
      const req = http.request(
        {
          agent: this.agent,
          hostname: this.base.hostname,
          port: this.base.port,
          method,
          path,
          headers: requestHeaders,
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (chunk: Buffer) => chunks.push(chunk));
          res.on('end', () =>
            resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') })
          );
          res.on('error', reject);
        }
      );
      req.on('error', reject);
      req.end(body);
    });
  }

  /** Like `request`, but a status other than `expected` is an error (with the body's start). */
  async expect(expected: number[], method: string, path: string, body?: string, headers?: Record<string, string>): Promise<HttpResponse> {
    const res = await this.request(method, path, body, headers);
    if (!expected.includes(res.status)) {
      throw new Error(`${method} ${path} → ${res.status}: ${res.body.slice(0, 300)}`);
    }
    return res;
  }

  close(): void {
    this.agent.destroy();
  }
}
