import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { loadConfig } from '../../src/core/config';
import { ConfigError } from '../../src/core/errors';
import { decideScrape, type ScrapeRequest } from '../../src/core/metrics/scrape-rules';
import { hostRules } from '../../src/web/host-check';

const TOKEN = 'scrape-secret-123';
const loopback = { token: undefined, hosts: hostRules('127.0.0.1', []) };
const withToken = { token: TOKEN, hosts: hostRules('0.0.0.0', []) };

function req(over: Partial<ScrapeRequest> = {}): ScrapeRequest {
  return {
    method: 'GET',
    url: '/metrics',
    host: '127.0.0.1:9464',
    authorization: undefined,
    hasBody: false,
    localPort: 9464,
    ...over,
  };
}

test('GET /metrics on loopback without a token is served; HEAD too', () => {
  assert.deepEqual(decideScrape(req(), loopback), { serve: true, head: false });
  assert.deepEqual(decideScrape(req({ method: 'HEAD' }), loopback), { serve: true, head: true });
  assert.equal(decideScrape(req({ url: '/metrics?x=1' }), loopback).serve, true);
});

test('only GET /metrics without a body: other paths 404, other methods 405, a body 400', () => {
  for (const url of ['/', '/metrics/', '/metrics/../x', '/_status', '//metrics', ''])
    assert.deepEqual(decideScrape(req({ url }), loopback), {
      serve: false,
      status: 404,
      message: 'only /metrics is served here',
    });
  for (const method of ['POST', 'PUT', 'DELETE', 'OPTIONS', 'TRACE', undefined])
    assert.equal((decideScrape(req({ method }), loopback) as { status: number }).status, 405);
  assert.equal((decideScrape(req({ hasBody: true }), loopback) as { status: number }).status, 400);
});

test('without a token, a Host that is not one of the server’s names is refused 421 (DNS rebinding)', () => {
  for (const host of [
    'evil.example:9464',
    'localhost.evil.example:9464',
    undefined,
    '127.0.0.1:80',
  ])
    assert.equal((decideScrape(req({ host }), loopback) as { status: number }).status, 421);
  assert.equal(decideScrape(req({ host: 'localhost:9464' }), loopback).serve, true);
});

test('with a token, only Authorization: Bearer <token> is served; anything else is 401', () => {
  const host = 'runner7.example:9464';
  assert.equal(
    decideScrape(req({ host, authorization: `Bearer ${TOKEN}` }), withToken).serve,
    true,
  );
  assert.equal(
    decideScrape(req({ host, authorization: `bearer   ${TOKEN} ` }), withToken).serve,
    true,
  );
  for (const authorization of [
    undefined,
    '',
    'Bearer',
    `Bearer ${TOKEN}x`,
    `Basic ${Buffer.from(`x:${TOKEN}`).toString('base64')}`,
    `Bearer ${TOKEN} extra`,
    `Bearer ${'a'.repeat(5000)}`,
  ])
    assert.equal(
      (decideScrape(req({ host, authorization }), withToken) as { status: number }).status,
      401,
      String(authorization).slice(0, 40),
    );
});

test('no Authorization header other than the token’s opens a token-protected /metrics', () => {
  fc.assert(
    fc.property(fc.string({ maxLength: 200 }), (authorization) => {
      fc.pre(authorization.trim() !== `Bearer ${TOKEN}` && !authorization.includes(TOKEN));
      assert.equal(decideScrape(req({ authorization }), withToken).serve, false);
    }),
  );
});

test('CRONQ_METRICS_PORT: unset is off; 1-65535 is taken; anything else is a ConfigError naming it', () => {
  assert.equal(loadConfig({}).metrics.port, undefined);
  assert.equal(loadConfig({ CRONQ_METRICS_PORT: '' }).metrics.port, undefined);
  assert.equal(loadConfig({ CRONQ_METRICS_PORT: '9464' }).metrics.port, 9464);
  for (const bad of ['0', '65536', 'abc', '9464.5', '-1', '1e3x'])
    assert.throws(
      () => loadConfig({ CRONQ_METRICS_PORT: bad }),
      (e: unknown) =>
        e instanceof ConfigError &&
        e.message.includes('CRONQ_METRICS_PORT') &&
        e.message.includes('1 to 65535'),
      bad,
    );
});

test('the metrics token is CRONQ_METRICS_TOKEN, else CRONQ_API_TOKEN; a short one is refused', () => {
  assert.equal(loadConfig({ CRONQ_API_TOKEN: 'api-token-1' }).metrics.token, 'api-token-1');
  assert.equal(
    loadConfig({ CRONQ_API_TOKEN: 'api-token-1', CRONQ_METRICS_TOKEN: 'metrics-token-1' }).metrics
      .token,
    'metrics-token-1',
  );
  assert.equal(loadConfig({}).metrics.token, undefined);
  assert.throws(() => loadConfig({ CRONQ_METRICS_TOKEN: 'short' }), ConfigError);
  assert.equal(loadConfig({}).metrics.listen, '127.0.0.1');
});
