/**
 * Downloads through a proxy (a real one the test starts on 127.0.0.1, test/helpers/proxy-server.ts),
 * read from the environment as curl reads it: http:// goes to the proxy as an absolute-URI GET,
 * https:// through CONNECT with TLS end to end (the origin's certificate is checked against the
 * origin's name), NO_PROXY goes direct, credentials in the proxy URL are sent, and a proxy that
 * asks for credentials or is down is a typed error naming the proxy (never the password).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer as createHttps } from 'node:https';
import { createServer as createNet, type Server as NetServer } from 'node:net';
import type { Server } from 'node:http';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { kumo } from '../../helpers/cli.js';
import { sha256 } from '../../helpers/http-server.js';
import { startProxy } from '../../helpers/proxy-server.js';
import { setup, makeQcow2, type Fixture } from './fixture.js';

const PROXY_VARS = ['http_proxy', 'HTTP_PROXY', 'https_proxy', 'HTTPS_PROXY', 'all_proxy', 'ALL_PROXY', 'no_proxy', 'NO_PROXY'];

/** The child's proxy variables, all of them set explicitly (the developer's own are not used). */
function proxyEnv(vars: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { KUMO_RETRY_BACKOFF_MS: '20' };
  for (const v of PROXY_VARS) env[v] = '';
  return { ...env, ...vars };
}

function listen(s: Server | NetServer): Promise<number> {
  return new Promise((r) => s.listen(0, '127.0.0.1', () => r((s.address() as { port: number }).port)));
}

async function pull(f: Fixture, url: string, img: Buffer, env: NodeJS.ProcessEnv) {
  const r = await kumo(['image', 'pull', url, '--checksum', `sha256:${sha256(img)}`, '--json'], { home: f.paths.home, env });
  return { ...r, json: r.stdout.trim() ? JSON.parse(r.stdout) : undefined };
}

async function rmImage(f: Fixture, img: Buffer) {
  const r = await kumo(['image', 'rm', sha256(img).slice(0, 12)], { home: f.paths.home });
  assert.equal(r.code, 0, r.stderr);
}

test('http through HTTP_PROXY (absolute-URI GET), NO_PROXY goes direct, a proxy that is down is a typed error', async () => {
  const f = await setup();
  const proxy = await startProxy();
  try {
    const img = await makeQcow2(f.dir, 'plain', 2);
    f.server.put('/plain.qcow2', img);
    const url = `${f.server.url}/plain.qcow2`;

    // through the proxy: it sees the absolute URI, the origin sees the request it forwarded
    const via = await pull(f, url, img, proxyEnv({ HTTP_PROXY: proxy.url }));
    assert.equal(via.code, 0, via.stderr);
    assert.equal(via.json.id, sha256(img));
    assert.deepEqual(proxy.requests.map((r) => [r.method, r.target, r.status]), [['GET', url, 200]]);
    assert.equal(f.server.requests.filter((r) => r.path === '/plain.qcow2').length, 1);
    await rmImage(f, img);

    // lower-case wins (as in curl): http_proxy names the proxy, HTTP_PROXY a port nobody listens on
    const dead = createNet();
    const deadPort = await listen(dead);
    await new Promise((r) => dead.close(r));
    proxy.requests.length = 0;
    const lower = await pull(f, url, img, proxyEnv({ http_proxy: proxy.url, HTTP_PROXY: `http://127.0.0.1:${deadPort}` }));
    assert.equal(lower.code, 0, lower.stderr);
    assert.equal(proxy.requests.length, 1);
    await rmImage(f, img);

    // NO_PROXY: the proxy sees nothing (a host:port entry, and a plain host among others)
    for (const noProxy of [`127.0.0.1:${f.server.port}`, 'example.org, 127.0.0.1 ,.internal']) {
      proxy.requests.length = 0;
      const direct = await pull(f, url, img, proxyEnv({ HTTP_PROXY: proxy.url, NO_PROXY: noProxy }));
      assert.equal(direct.code, 0, direct.stderr);
      assert.deepEqual(proxy.requests, [], noProxy);
      await rmImage(f, img);
    }
    // an entry for another port of the host does not bypass
    proxy.requests.length = 0;
    const otherPort = await pull(f, url, img, proxyEnv({ HTTP_PROXY: proxy.url, NO_PROXY: `127.0.0.1:${deadPort}` }));
    assert.equal(otherPort.code, 0, otherPort.stderr);
    assert.equal(proxy.requests.length, 1);
    await rmImage(f, img);

    // the proxy is down: a typed error that names the proxy, and nothing is stored
    const down = await pull(f, url, img, proxyEnv({ HTTP_PROXY: `http://127.0.0.1:${deadPort}` }));
    assert.equal(down.code, 7, down.stderr);
    const err = down.json.error;
    assert.equal(err.code, 'PROXY_ERROR');
    assert.match(err.message, new RegExp(`through the proxy http://127\\.0\\.0\\.1:${deadPort} \\(from HTTP_PROXY\\): connection to the proxy refused`));
    assert.match(err.hint, /NO_PROXY/);
    assert.deepEqual(JSON.parse((await kumo(['image', 'list', '--json'], { home: f.paths.home })).stdout), []);

    // a proxy variable that is not an http:// proxy
    const socks = await pull(f, url, img, proxyEnv({ HTTP_PROXY: 'socks5://127.0.0.1:1080' }));
    assert.equal(socks.json.error.code, 'PROXY_INVALID');
    assert.match(socks.json.error.message, /HTTP_PROXY names a socks5 proxy/);
  } finally {
    await proxy.close();
    await f.done();
  }
});

test('https through HTTPS_PROXY with CONNECT: TLS end to end (the origin certificate is checked), 407 without credentials, success with them', async () => {
  const f = await setup();
  const proxy = await startProxy({ resolve: { localhost: '127.0.0.1' } });
  const authProxy = await startProxy({ auth: 'alice:s3cr%t pw' });
  const servers: Server[] = [];
  try {
    const key = join(f.dir, 'key.pem');
    const cert = join(f.dir, 'cert.pem');
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'], { stdio: 'ignore' });
    const img = await makeQcow2(f.dir, 'tls', 2);
    const seen: string[] = [];
    const tls = createHttps({ key: readFileSync(key), cert: readFileSync(cert) }, (req, res) => {
      seen.push(req.url ?? '');
      if (req.url === '/tls.qcow2') res.end(img);
      else res.writeHead(404).end();
    }) as unknown as Server;
    servers.push(tls);
    const port = await listen(tls);
    const url = `https://127.0.0.1:${port}/tls.qcow2`;
    const ca = { NODE_EXTRA_CA_CERTS: cert };

    const ok = await pull(f, url, img, proxyEnv({ ...ca, HTTPS_PROXY: proxy.url, HTTP_PROXY: 'http://127.0.0.1:1' }));
    assert.equal(ok.code, 0, ok.stderr);
    assert.equal(ok.json.id, sha256(img));
    assert.deepEqual(proxy.requests.map((r) => [r.method, r.target, r.status]), [['CONNECT', `127.0.0.1:${port}`, 200]]);
    assert.deepEqual(seen, ['/tls.qcow2']);
    await rmImage(f, img);

    // the certificate is checked against the origin's name, through the tunnel too: it names
    // 127.0.0.1, not localhost (the proxy sends localhost to 127.0.0.1)
    proxy.requests.length = 0;
    const wrongName = await pull(f, `https://localhost:${port}/tls.qcow2`, img, proxyEnv({ ...ca, HTTPS_PROXY: proxy.url }));
    assert.notEqual(wrongName.code, 0);
    assert.equal(wrongName.json.error.code, 'HOST_UNREACHABLE', wrongName.stdout);
    assert.match(wrongName.json.error.message, /localhost|altnames|certificate/i);
    assert.ok(proxy.requests.length >= 1 && proxy.requests.every((r) => r.method === 'CONNECT' && r.target === `localhost:${port}`), JSON.stringify(proxy.requests));
    assert.deepEqual(seen, ['/tls.qcow2']);

    // a proxy that wants credentials: 407 without them, a typed error naming the proxy
    const noAuth = await pull(f, url, img, proxyEnv({ ...ca, https_proxy: authProxy.url }));
    assert.equal(noAuth.code, 7, noAuth.stderr);
    assert.equal(noAuth.json.error.code, 'PROXY_ERROR');
    assert.match(noAuth.json.error.message, new RegExp(`proxy http://127\\.0\\.0\\.1:${authProxy.port} \\(from https_proxy\\): it asks for credentials \\(HTTP 407`));
    assert.match(noAuth.json.error.hint, /https_proxy=http:\/\/USER:PASSWORD@127\.0\.0\.1:\d+/);
    assert.equal(authProxy.requests.length, 1, 'a 407 is not retried');

    // wrong credentials: refused, and the password is printed nowhere
    const badUrl = `http://alice:wrong-secret@127.0.0.1:${authProxy.port}`;
    const badAuth = await pull(f, url, img, proxyEnv({ ...ca, HTTPS_PROXY: badUrl }));
    assert.equal(badAuth.json.error.code, 'PROXY_ERROR');
    assert.match(badAuth.json.error.message, /refused the credentials/);
    assert.ok(!`${badAuth.stdout}${badAuth.stderr}`.includes('wrong-secret'), badAuth.stdout);
    const badText = await kumo(['image', 'pull', url, '--checksum', `sha256:${sha256(img)}`], { home: f.paths.home, env: proxyEnv({ ...ca, HTTPS_PROXY: badUrl }) });
    assert.match(badText.stderr, /PROXY_ERROR|proxy http:\/\/127\.0\.0\.1/);
    assert.ok(!`${badText.stdout}${badText.stderr}`.includes('wrong-secret'), badText.stderr);

    // the right credentials (%-encoded in the URL): sent as Proxy-Authorization Basic, success
    authProxy.requests.length = 0;
    const withAuth = await pull(f, url, img, proxyEnv({ ...ca, HTTPS_PROXY: `http://alice:s3cr%25t%20pw@127.0.0.1:${authProxy.port}` }));
    assert.equal(withAuth.code, 0, withAuth.stderr);
    assert.deepEqual(authProxy.requests.map((r) => [r.method, r.auth, r.status]), [['CONNECT', `Basic ${Buffer.from('alice:s3cr%t pw').toString('base64')}`, 200]]);
    await rmImage(f, img);

    // NO_PROXY=* : direct, the proxy sees nothing
    proxy.requests.length = 0;
    const direct = await pull(f, url, img, proxyEnv({ ...ca, HTTPS_PROXY: proxy.url, no_proxy: '*' }));
    assert.equal(direct.code, 0, direct.stderr);
    assert.deepEqual(proxy.requests, []);
  } finally {
    for (const s of servers) s.close();
    await proxy.close();
    await authProxy.close();
    await f.done();
  }
});
