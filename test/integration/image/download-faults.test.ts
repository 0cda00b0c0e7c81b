/**
 * Download faults against the local test server, each with the behaviour docs/images.md names:
 * a server that ignores Range, answers 416 or a wrong Content-Range makes the download restart
 * from zero; retries that run out give a typed error saying so and leave no partial file taken
 * for complete; a stalled connection hits the idle timeout and is resumed (or, when nothing ever
 * comes, gives up with a typed error); a burst then a pause still reports how far the burst got.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { createServer } from 'node:http';
import { randomBytes } from 'node:crypto';
import { ensureImage, listImages } from '../../../src/image/index.js';
import { download } from '../../../src/image/download.js';
import { isKumoError } from '../../../src/core/errors.js';
import { sha256 } from '../../helpers/http-server.js';
import { setup, makeQcow2, listTree, type Fixture } from './fixture.js';

const P = '/img/disk.qcow2';

/** The download requests of P, as the server saw them. */
const requestsOf = (f: Fixture) => f.server.requests.filter((r) => r.path === P);

async function stored(f: Fixture, img: Buffer): Promise<void> {
  const list = await listImages(f.paths);
  assert.equal(list.length, 1);
  assert.equal(list[0]!.id, sha256(img));
  // The stored bytes, read back independently of kumo's own digest.
  assert.equal(sha256(await readFile(list[0]!.path)), sha256(img));
}

/** No partial download and no temp file left in the cache or the store. */
async function cacheClean(f: Fixture): Promise<void> {
  const downloads = await readdir(join(f.paths.cache, 'downloads')).catch(() => [] as string[]);
  assert.deepEqual(downloads, []);
  assert.deepEqual((await listTree(f.paths.images)).filter((x) => !x.startsWith('.') && !/^[0-9a-f]{64}\.(qcow2|raw|json)$/.test(x)), []);
}

for (const [what, second] of [
  ['a server that ignores Range on the resume', { ignoreRange: true, times: 1 }],
  ['a 416 answer to the resume', { status: 416, times: 1 }],
  ['a Content-Range that does not start where asked', { contentRange: 'bytes 0-99/100', times: 1 }],
] as const) {
  test(`${what}: the download restarts from zero and the result verifies`, async () => {
    const f = await setup();
    try {
      const img = await makeQcow2(f.dir, 'r', 8, what);
      f.server.put(P, img);
      const cut = Math.floor(img.length / 3);
      f.server.fault(P, { cutAfter: cut, times: 1 });
      f.server.fault(P, second);
      const r = await ensureImage(f.paths, `${f.server.url}${P}`, { checksum: `sha256:${sha256(img)}` });
      assert.equal(r.id, sha256(img));
      await stored(f, img);
      await cacheClean(f);
      const reqs = requestsOf(f);
      // 1: cut; 2: the resume from the cut, refused in one way or another; then one from zero.
      assert.equal(reqs[0]!.range, undefined);
      assert.equal(reqs[1]!.range, `bytes=${cut}-`);
      if ('ignoreRange' in second) {
        assert.equal(reqs.length, 2, JSON.stringify(reqs));
        assert.equal(reqs[1]!.status, 200);
      } else {
        assert.equal(reqs.length, 3, JSON.stringify(reqs));
        assert.equal(reqs[1]!.status, 'status' in second ? 416 : 206);
        assert.equal(reqs[2]!.range, undefined);
        assert.equal(reqs[2]!.status, 200);
      }
    } finally {
      await f.done();
    }
  });
}

test('retries run out: a typed error that says so; the partial file is dropped, nothing stored, the next pull starts clean', async () => {
  const f = await setup();
  try {
    const img = await makeQcow2(f.dir, 'x', 8, 'exhaust');
    f.server.put(P, img);
    f.server.fault(P, { cutAfter: Math.floor(img.length / 2), times: 1 });
    f.server.fault(P, { status: 503 });
    const url = `${f.server.url}${P}`;
    await assert.rejects(ensureImage(f.paths, url, { checksum: `sha256:${sha256(img)}` }), (e: unknown) => {
      assert.equal(isKumoError(e), true, String(e));
      const k = e as { code: string; message: string; hint?: string; kind: string };
      assert.equal(k.code, 'HTTP_ERROR');
      assert.equal(k.kind, 'external');
      assert.match(k.message, new RegExp(`GET ${url} failed: HTTP 503 .*\\(gave up after 6 attempts\\)`));
      assert.match(k.hint ?? '', /try again later or use a mirror/);
      return true;
    });
    // The cut attempt made progress (not counted); then 6 attempts of 503.
    assert.equal(requestsOf(f).length, 7);
    assert.deepEqual(await listImages(f.paths), []);
    await cacheClean(f);
    f.server.clearFaults();
    const n = requestsOf(f).length;
    const r = await ensureImage(f.paths, url, { checksum: `sha256:${sha256(img)}` });
    assert.equal(r.id, sha256(img));
    await stored(f, img);
    // Started from zero: the half file was not kept and resumed as if it were good.
    assert.equal(requestsOf(f)[n]!.range, undefined);
  } finally {
    await f.done();
  }
});

test('connection cuts with no progress run out the retries: HOST_UNREACHABLE, the partial file is kept for a resume and not stored', async () => {
  const f = await setup();
  try {
    const img = await makeQcow2(f.dir, 'c', 8, 'cuts');
    f.server.put(P, img);
    const keep = Math.floor(img.length / 4);
    f.server.fault(P, { cutAfter: keep, times: 1 });
    f.server.fault(P, { cutAfter: 0 });
    const url = `${f.server.url}${P}`;
    await assert.rejects(ensureImage(f.paths, url, { checksum: `sha256:${sha256(img)}` }), (e: unknown) => {
      assert.equal((e as { code: string }).code, 'HOST_UNREACHABLE');
      assert.match((e as Error).message, /connection cut \(gave up after 6 attempts\)/);
      return true;
    });
    assert.deepEqual(await listImages(f.paths), []);
    const parts = (await readdir(join(f.paths.cache, 'downloads'))).filter((x) => x.endsWith('.part'));
    assert.equal(parts.length, 1);
    assert.equal((await stat(join(f.paths.cache, 'downloads', parts[0]!))).size, keep);
    f.server.clearFaults();
    const n = requestsOf(f).length;
    const r = await ensureImage(f.paths, url, { checksum: `sha256:${sha256(img)}` });
    assert.equal(r.id, sha256(img));
    await stored(f, img);
    assert.equal(requestsOf(f)[n]!.range, `bytes=${keep}-`);
    await cacheClean(f);
  } finally {
    await f.done();
  }
});

test('a stalled connection hits the idle timeout and is resumed; a server that never answers gives up with a typed time-out', async () => {
  const f = await setup();
  try {
    const img = await makeQcow2(f.dir, 's', 8, 'stall');
    f.server.put(P, img);
    const stallAt = Math.floor(img.length / 3);
    f.server.fault(P, { stallAfter: stallAt, times: 1 });
    const part = join(f.dir, 'stall.part');
    const seen: string[] = [];
    const r = await download({
      url: `${f.server.url}${P}`, part, algos: ['sha256'], idleTimeoutMs: 300, backoffMs: 10, retries: 2,
      onProgress: (bytes) => seen.push(`progress ${bytes}`),
      onRetry: (_n, e) => seen.push(`retry: ${(e as Error).message}`),
    });
    assert.equal(r.digests.sha256, sha256(img));
    // while it stalled, the progress said how far it got; the retry says why
    const retry = seen.findIndex((s) => s.startsWith('retry'));
    assert.equal(seen[retry - 1], `progress ${stallAt}`, seen.join('\n'));
    assert.match(seen[retry]!, /^retry: cannot download \S+: timed out$/);
    assert.equal(sha256(await readFile(part)), sha256(img));
    const reqs = requestsOf(f);
    assert.equal(reqs.length, 2);
    assert.equal(reqs[1]!.range, `bytes=${stallAt}-`);

    f.server.fault('/never', { delayMs: 3000 });
    f.server.put('/never', img);
    await assert.rejects(download({ url: `${f.server.url}/never`, part: join(f.dir, 'never.part'), algos: ['sha256'], idleTimeoutMs: 200, backoffMs: 10, retries: 1 }), (e: unknown) => {
      assert.equal((e as { code: string }).code, 'HOST_UNREACHABLE');
      assert.match((e as Error).message, /timed out \(gave up after 2 attempts\)/);
      return true;
    });
    assert.equal(f.server.requests.filter((q) => q.path === '/never').length, 2);
  } finally {
    await f.done();
  }
});

test('a burst then a pause: the progress reports the last bytes of the burst while the connection waits', async () => {
  const f = await setup();
  const body = randomBytes(8 << 20);
  const half = body.length >> 1;
  let finish!: () => void;
  const held = new Promise<void>((r) => (finish = r));
  // a first small piece, then (once a report interval has passed) the rest of the first half as
  // fast as the socket takes it, many reads within one 100 ms interval; then the connection is held
  const server = createServer((_req, res) => {
    res.writeHead(200, { 'Content-Length': body.length });
    res.write(body.subarray(0, 4096));
    setTimeout(() => {
      for (let o = 4096; o < half; o += 16384) res.write(body.subarray(o, Math.min(o + 16384, half)));
      void held.then(() => res.end(body.subarray(half)));
    }, 250);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  try {
    const seen: number[] = [];
    let sawHalf!: () => void;
    const halfSeen = new Promise<void>((r) => (sawHalf = r));
    const port = (server.address() as { port: number }).port;
    const dl = download({
      url: `http://127.0.0.1:${port}/burst.raw`, part: join(f.dir, 'burst.part'), algos: ['sha256'], idleTimeoutMs: 20_000,
      onProgress: (bytes) => (seen.push(bytes), bytes === half && sawHalf()),
      onRetry: (_n, e) => assert.fail(`no retry expected: ${(e as Error).message}`),
    });
    // the server holds until the report of the whole first half came; 10 s without it is the failure
    let timer: NodeJS.Timeout | undefined;
    const verdict = await Promise.race([halfSeen.then(() => 'reported'), new Promise<string>((r) => (timer = setTimeout(() => r('not reported'), 10_000)))]);
    clearTimeout(timer);
    assert.equal(verdict, 'reported', `while held at ${half} bytes, the reports were: ${seen.join(', ')}`);
    finish();
    const r = await dl;
    assert.equal(r.digests.sha256, sha256(body));
    assert.equal(seen.at(-1), body.length);
  } finally {
    finish();
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
    await f.done();
  }
});
