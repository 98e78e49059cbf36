import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { brotliDecompressSync, gunzipSync } from 'node:zlib';
import { createTestDatabase, type TestDatabase } from '../helpers/services';
import { ROOT } from '../helpers/processes';
import { startTestWeb, type TestWeb } from '../helpers/web';
import { accepted } from '../../src/web/assets';

/**
 * The admin's static files: named by a hash of their content, cached for a
 * year under that name, compressed as the browser accepts; pages stay
 * no-store; every page, error pages too, has the viewport meta tag.
 */

let tdb: TestDatabase;
let web: TestWeb;

before(async () => {
  tdb = await createTestDatabase();
  web = await startTestWeb(tdb.db, tdb.url);
});

after(async () => {
  await web?.stop();
  await tdb?.drop();
});

/** A raw GET (fetch would decode the body and hide Content-Encoding). */
function get(
  urlPath: string,
  headers: Record<string, string> = {},
  method = 'GET',
): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = http.request(`${web.url}${urlPath}`, { method, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () =>
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }),
      );
    });
    req.on('error', reject);
    req.end();
  });
}

test('pages name each static file by its content hash and stay no-store; every page has the viewport tag', async () => {
  const home = await get('/');
  assert.equal(home.headers['cache-control'], 'no-store');
  const html = home.body.toString();
  for (const name of ['style.css', 'live.js', 'favicon.svg'])
    assert.match(html, new RegExp(`/static/[0-9a-f]{16}/${name.replace('.', '\\.')}"`), name);
  assert.match(html, /<meta name="viewport" content="width=device-width, initial-scale=1">/);
  const missing = await get('/job/999999');
  assert.equal(missing.status, 404);
  assert.match(
    missing.body.toString(),
    /<meta name="viewport" content="width=device-width, initial-scale=1">/,
  );
  assert.match(missing.body.toString(), /\/static\/[0-9a-f]{16}\/style\.css"/);
});

test('a hashed file is cached for a year and sent as brotli, gzip or plain, as accepted', async () => {
  const html = (await get('/')).body.toString();
  const url = /\/static\/[0-9a-f]{16}\/style\.css/.exec(html)![0];
  const file = readFileSync(path.join(ROOT, 'public', 'style.css'));

  const br = await get(url, { 'accept-encoding': 'gzip, deflate, br' });
  assert.equal(br.status, 200);
  assert.equal(br.headers['cache-control'], 'public, max-age=31536000, immutable');
  assert.equal(br.headers['content-encoding'], 'br');
  assert.equal(br.headers.vary, 'Accept-Encoding');
  assert.match(String(br.headers['content-type']), /^text\/css/);
  assert.ok(br.body.length < file.length / 2, `compressed to ${br.body.length} of ${file.length}`);
  assert.deepEqual(brotliDecompressSync(br.body), file);

  const gz = await get(url, { 'accept-encoding': 'gzip, br;q=0' });
  assert.equal(gz.headers['content-encoding'], 'gzip');
  assert.deepEqual(gunzipSync(gz.body), file);

  const plain = await get(url);
  assert.equal(plain.headers['content-encoding'], undefined);
  assert.deepEqual(plain.body, file);

  const head = await get(url, { 'accept-encoding': 'br' }, 'HEAD');
  assert.equal(head.status, 200);
  assert.equal(head.body.length, 0);
  assert.equal(head.headers['content-length'], String(br.body.length));
});

test('an old hash gets the current file briefly cached, the plain name an hour, an unknown file 404', async () => {
  const stale = await get('/static/0123456789abcdef/style.css');
  assert.equal(stale.status, 200);
  assert.equal(stale.headers['cache-control'], 'public, max-age=60');
  const plain = await get('/static/live.js');
  assert.equal(plain.status, 200);
  assert.equal(plain.headers['cache-control'], 'public, max-age=3600');
  for (const p of [
    '/static/nope.css',
    '/static/../package.json',
    '/static/%2e%2e/package.json',
    '/static/a/b/c',
  ])
    assert.equal((await get(p)).status, 404, p);
});

test('Accept-Encoding: a coding is accepted when listed without q=0', () => {
  assert.equal(accepted('gzip, deflate, br', 'br'), true);
  assert.equal(accepted('gzip;q=0.5, br;q=0', 'br'), false);
  assert.equal(accepted('gzip;q=0.5, br;q=0', 'gzip'), true);
  assert.equal(accepted('identity', 'gzip'), false);
  assert.equal(accepted('', 'br'), false);
  assert.equal(accepted('xbr, brx', 'br'), false);
});
