/**
 * Downloads over https (a real TLS server on 127.0.0.1 with a certificate the test makes, trusted
 * through NODE_EXTRA_CA_CERTS): a redirect to another https URL is followed, a redirect down to
 * plain http is refused and nothing is stored.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer as createHttps } from 'node:https';
import { createServer as createHttp, type Server } from 'node:http';
import { execFileSync } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { kumo } from '../../helpers/cli.js';
import { sha256 } from '../../helpers/http-server.js';
import { setup, makeQcow2 } from './fixture.js';

function listen(s: Server): Promise<number> {
  return new Promise((r) => s.listen(0, '127.0.0.1', () => r((s.address() as { port: number }).port)));
}

test('https: a redirect to https is followed; a redirect down to plain http is refused, nothing stored', async () => {
  const f = await setup();
  const servers: Server[] = [];
  try {
    const key = join(f.dir, 'key.pem');
    const cert = join(f.dir, 'cert.pem');
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'], { stdio: 'ignore' });
    const img = await makeQcow2(f.dir, 'tls', 2);
    const plain = createHttp((_req, res) => res.end(img));
    servers.push(plain);
    const httpPort = await listen(plain);
    let httpsPort = 0;
    const tls = createHttps({ key: readFileSync(key), cert: readFileSync(cert) }, (req, res) => {
      if (req.url === '/down.qcow2') res.writeHead(302, { Location: `http://127.0.0.1:${httpPort}/down.qcow2` }).end();
      else if (req.url === '/moved.qcow2') res.writeHead(301, { Location: `https://127.0.0.1:${httpsPort}/real.qcow2` }).end();
      else if (req.url === '/real.qcow2') res.end(img);
      else res.writeHead(404).end();
    }) as unknown as Server;
    servers.push(tls);
    httpsPort = await listen(tls);
    const env = { NODE_EXTRA_CA_CERTS: cert, KUMO_RETRY_BACKOFF_MS: '20' };
    const home = f.paths.home;
    const checksum = `sha256:${sha256(img)}`;

    // https -> https: followed (so the TLS set-up works and the refusal below is about the downgrade)
    const ok = await kumo(['image', 'pull', `https://127.0.0.1:${httpsPort}/moved.qcow2`, '--checksum', checksum, '--json'], { home, env });
    assert.equal(ok.code, 0, ok.stderr);
    assert.equal(JSON.parse(ok.stdout).id, sha256(img));
    const rmOk = await kumo(['image', 'rm', sha256(img).slice(0, 12)], { home, env });
    assert.equal(rmOk.code, 0, rmOk.stderr);

    // https -> http: refused
    const down = await kumo(['image', 'pull', `https://127.0.0.1:${httpsPort}/down.qcow2`, '--checksum', checksum, '--json'], { home, env });
    assert.equal(down.code, 7, down.stderr); // an external error: the server did it
    const err = JSON.parse(down.stdout).error;
    assert.equal(err.code, 'HTTP_DOWNGRADE');
    assert.match(err.message, /redirects to http \(http:\/\/127\.0\.0\.1:\d+\/down\.qcow2\): refused/);
    assert.match(err.hint, /https mirror/);
    assert.deepEqual(JSON.parse((await kumo(['image', 'list', '--json'], { home, env })).stdout), []);
    assert.deepEqual(readdirSync(f.paths.images).filter((n) => !n.startsWith('.')), []);
  } finally {
    for (const s of servers) s.close();
    await f.done();
  }
});
