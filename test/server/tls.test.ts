import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { ConfigError, loadConfig } from '../../server/config';
import { copyTemplateDatabase } from '../support/template-database';
import { startServerOn } from '../support/test-server';
import type { RunningServer } from '../../server/start';

/**
 * TLS_CERT_FILE and TLS_KEY_FILE: the server speaks HTTPS itself, TLS 1.2 or later
 * (SMART App Launch: "over TLS-secured channels"; Backend Services: "TLS Version 1.2 or a
 * more recent version"). A certificate for localhost is made here with openssl.
 */
const dir = mkdtempSync(path.join(os.tmpdir(), 'fhir-tls-'));
const certFile = path.join(dir, 'cert.pem');
const keyFile = path.join(dir, 'key.pem');
let server: RunningServer;
let base: string;
let drop: () => Promise<void>;

beforeAll(async () => {
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', keyFile, '-out', certFile, '-days', '1', '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1'], { stdio: 'ignore' });
  const database = await copyTemplateDatabase();
  drop = database.drop;
  // PUBLIC_URL unset: the default follows the scheme.
  const started = await startServerOn(database.url, { TLS_CERT_FILE: certFile, TLS_KEY_FILE: keyFile, PUBLIC_URL: '' });
  server = started.server;
  base = started.base;
}, 60000);

afterAll(async () => {
  await server?.stop();
  await drop?.();
  rmSync(dir, { recursive: true, force: true });
});

function get(url: string, options: https.RequestOptions = {}): Promise<{ status: number; body: string; protocol: string }> {
  return new Promise((resolve, reject) => {
    const req = https.get(url, { ca: readFileSync(certFile), ...options }, (res) => {
      const protocol = (res.socket as tls.TLSSocket).getProtocol() ?? '';
      let body = '';
      res.on('data', (c) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, protocol }));
    });
    req.on('error', reject);
  });
}

test('the FHIR API and SMART discovery answer over HTTPS, and the links they give are https', async () => {
  expect(server.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
  const port = new URL(server.url).port;
  const metadata = await get(`https://127.0.0.1:${port}/fhir/metadata`);
  expect(metadata.status).toBe(200);
  expect(['TLSv1.2', 'TLSv1.3']).toContain(metadata.protocol);
  expect(JSON.parse(metadata.body).implementation.url).toBe(`https://localhost:${port}/fhir`);
  expect(base).toBe(`https://localhost:${port}/fhir`);
  const discovery = JSON.parse((await get(`https://127.0.0.1:${port}/.well-known/smart-configuration`)).body);
  expect(discovery.token_endpoint).toBe(`https://localhost:${port}/auth/token`);
});

test('TLS 1.1 and plain HTTP are refused', async () => {
  const port = Number(new URL(server.url).port);
  const oldTls = await new Promise<string>((resolve) => {
    const socket = tls.connect({ host: '127.0.0.1', port, maxVersion: 'TLSv1.1', minVersion: 'TLSv1', ca: readFileSync(certFile), servername: 'localhost' }, () => {
      resolve(`connected with ${socket.getProtocol()}`);
      socket.destroy();
    });
    socket.on('error', (err) => resolve(`refused: ${err.message}`));
  });
  expect(oldTls).toMatch(/^refused/);
  const plain = await new Promise<string>((resolve) => {
    const socket = net.connect(port, '127.0.0.1', () => socket.write('GET /fhir/metadata HTTP/1.1\r\nHost: localhost\r\n\r\n'));
    let text = '';
    socket.on('data', (c) => (text += c.toString('latin1')));
    socket.on('close', () => resolve(text));
    socket.on('error', () => resolve(text));
  });
  expect(plain).not.toContain('CapabilityStatement');
});

test('a certificate without its key, a file that cannot be read, or a key that is not the certificate’s is a configuration error naming them', () => {
  expect(() => loadConfig({ TLS_CERT_FILE: certFile })).toThrow(ConfigError);
  expect(() => loadConfig({ TLS_CERT_FILE: certFile })).toThrow(/TLS_CERT_FILE and TLS_KEY_FILE/);
  expect(() => loadConfig({ TLS_CERT_FILE: certFile, TLS_KEY_FILE: path.join(dir, 'missing.pem') })).toThrow(/TLS_KEY_FILE cannot be read/);
  const garbage = path.join(dir, 'garbage.pem');
  writeFileSync(garbage, 'not a key');
  expect(() => loadConfig({ TLS_CERT_FILE: certFile, TLS_KEY_FILE: garbage })).toThrow(/PEM/);
  expect(loadConfig({ TLS_CERT_FILE: certFile, TLS_KEY_FILE: keyFile, PORT: '9443' }).publicUrl).toBe('https://localhost:9443');
});
