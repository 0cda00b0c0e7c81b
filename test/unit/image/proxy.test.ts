// Which proxy a URL goes through, as curl decides it (src/image/proxy.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { bypassesProxy, parseProxy, proxyFor } from '../../../src/image/proxy.js';
import { isKumoError } from '../../../src/core/errors.js';

const u = (s: string) => new URL(s);

test('https uses https_proxy/HTTPS_PROXY, http uses http_proxy/HTTP_PROXY, all_proxy is the fallback; lower-case wins', () => {
  assert.equal(proxyFor(u('https://a.example/x'), { HTTPS_PROXY: 'http://p:3128', HTTP_PROXY: 'http://q:3128' })?.shown, 'http://p:3128');
  assert.equal(proxyFor(u('http://a.example/x'), { HTTPS_PROXY: 'http://p:3128', HTTP_PROXY: 'http://q:3128' })?.shown, 'http://q:3128');
  assert.equal(proxyFor(u('https://a.example/x'), { https_proxy: 'http://low:1', HTTPS_PROXY: 'http://up:2' })?.from, 'https_proxy');
  assert.equal(proxyFor(u('http://a.example/x'), { http_proxy: 'http://low:1', HTTP_PROXY: 'http://up:2' })?.shown, 'http://low:1');
  assert.equal(proxyFor(u('http://a.example/x'), { ALL_PROXY: 'http://all:9' })?.shown, 'http://all:9');
  assert.equal(proxyFor(u('https://a.example/x'), {}), undefined);
  assert.equal(proxyFor(u('https://a.example/x'), { HTTPS_PROXY: '  ' }), undefined);
  // no scheme: http:// (as in curl)
  assert.equal(proxyFor(u('https://a.example/x'), { HTTPS_PROXY: 'proxy.lan:8080' })?.shown, 'http://proxy.lan:8080');
});

test('credentials in the proxy URL become Proxy-Authorization Basic (%-decoded), and are left out of the shown address', () => {
  const p = parseProxy('http://al%40ice:p%3Ass@proxy:3128', 'HTTPS_PROXY');
  assert.equal(p.shown, 'http://proxy:3128');
  assert.equal(p.auth, `Basic ${Buffer.from('al@ice:p:ss').toString('base64')}`);
  assert.equal(parseProxy('http://proxy:3128', 'X').auth, undefined);
});

test('a proxy variable that is not an http:// proxy URL is a typed error that does not echo the value', () => {
  for (const [v, kind] of [['socks5://u:secret@h:1080', 'unsupported'], ['https://u:secret@h:443', 'unsupported'], ['http://u:secret@[bad', 'invalid']] as const) {
    assert.throws(
      () => proxyFor(u('https://a.example/'), { HTTPS_PROXY: v }),
      (e: unknown) => isKumoError(e) && e.code === 'PROXY_INVALID' && e.kind === kind && !e.message.includes('secret') && /HTTPS_PROXY/.test(e.message) && !!e.hint,
      v,
    );
  }
});

test('NO_PROXY: host suffixes, a leading dot, *, host:port, IPs and ranges; no_proxy wins', () => {
  const by = (url: string, list: string) => bypassesProxy(u(url), { NO_PROXY: list });
  assert.ok(by('https://example.com/', 'example.com'));
  assert.ok(by('https://a.b.example.com/', 'example.com'));
  assert.ok(by('https://a.example.com/', '.example.com'));
  assert.ok(by('https://example.com/', '.example.com'));
  assert.ok(!by('https://notexample.com/', 'example.com'));
  assert.ok(!by('https://example.com.evil.org/', 'example.com'));
  assert.ok(by('https://EXAMPLE.com/', 'Example.COM'));
  assert.ok(by('https://anything/', '*'));
  assert.ok(by('https://x.org/', 'a.org, x.org ,b.org'));
  assert.ok(by('http://127.0.0.1:8080/', '127.0.0.1'));
  assert.ok(!by('http://127.0.0.10/', '127.0.0.1'));
  assert.ok(by('http://127.0.0.1:8080/', '127.0.0.1:8080'));
  assert.ok(!by('http://127.0.0.1:8081/', '127.0.0.1:8080'));
  assert.ok(by('https://example.com/', 'example.com:443'));
  assert.ok(!by('http://example.com/', 'example.com:443'));
  assert.ok(by('http://10.1.2.3/', '10.0.0.0/8'));
  assert.ok(!by('http://11.1.2.3/', '10.0.0.0/8'));
  assert.ok(by('http://[::1]:80/', '::1'));
  assert.ok(!by('https://example.com/', ''));
  // the lower-case one wins
  assert.ok(!bypassesProxy(u('https://example.com/'), { no_proxy: 'other.org', NO_PROXY: 'example.com' }));
  assert.equal(proxyFor(u('https://example.com/'), { HTTPS_PROXY: 'http://p:1', no_proxy: 'example.com' }), undefined);
});
