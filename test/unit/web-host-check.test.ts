/**
 * The Host rule and the per-client token bucket, for all inputs
 * (the HTTP behaviour is tested in test/integration/web-hardening-hosts.test.ts).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { hostAllowed, hostRules, parseHostHeader } from '../../src/web/host-check';
import { TokenBuckets } from '../../src/web/limits';
import { loadConfig } from '../../src/core/config';

const PORT = 5000;
const rules = hostRules('127.0.0.1', ['cronq.example.com', '10.0.0.5:5000']);
const label = fc.stringMatching(/^[a-z0-9]([a-z0-9-]{0,10}[a-z0-9])?$/);

test('a name that is not exactly an allowed one is refused, whatever it is made of', () => {
  const allowed = new Set(['localhost', '127.0.0.1', '[::1]', 'cronq.example.com', '10.0.0.5']);
  fc.assert(
    fc.property(
      fc.array(label, { minLength: 1, maxLength: 5 }),
      fc.integer({ min: 1, max: 65535 }),
      (labels, port) => {
        const name = labels.join('.');
        fc.pre(!allowed.has(name));
        for (const host of [
          name,
          `${name}:${port}`,
          `localhost.${name}:${PORT}`,
          `${name}.localhost:${PORT}`,
        ])
          assert.equal(hostAllowed(rules, host, PORT), false, host);
      },
    ),
  );
});

test('userinfo, paths, spaces, trailing dots and anything but name[:port] never pass', () => {
  fc.assert(
    fc.property(
      fc.string({ maxLength: 20 }),
      fc.constantFrom('@', '/', ' ', '?', '#', '\\', '%'),
      (s, bad) => {
        for (const host of [`${s}${bad}localhost:${PORT}`, `localhost:${PORT}${bad}${s}`])
          assert.equal(hostAllowed(rules, host, PORT), false, host);
      },
    ),
  );
  for (const host of [
    'localhost.',
    `localhost.:${PORT}`,
    '',
    ':5000',
    `[::1`,
    `localhost:0`,
    `localhost:99999`,
  ])
    assert.equal(hostAllowed(rules, host, PORT), false, host);
});

test('the built-in names pass on the arrival port only; configured bare names on any port', () => {
  fc.assert(
    fc.property(fc.integer({ min: 1, max: 65535 }), (port) => {
      for (const name of ['localhost', '127.0.0.1', '[::1]', 'LocalHost'])
        assert.equal(hostAllowed(rules, `${name}:${port}`, PORT), port === PORT);
      assert.equal(hostAllowed(rules, `cronq.example.com:${port}`, PORT), true);
      assert.equal(hostAllowed(rules, `10.0.0.5:${port}`, PORT), port === 5000);
    }),
  );
  assert.deepEqual(parseHostHeader('[0:0:0:0:0:0:0:1]:80'), { host: '[::1]', port: 80 });
  assert.equal(
    hostAllowed(hostRules('0.0.0.0', []), `0.0.0.0:${PORT}`, PORT),
    false,
    'a wildcard bind names no host',
  );
});

test('CRONQ_ALLOWED_HOSTS is validated at start', () => {
  assert.deepEqual(
    loadConfig({ CRONQ_ALLOWED_HOSTS: ' A.example.com , [fd00::1]:8080 ,' }).web.allowedHosts,
    ['a.example.com', '[fd00::1]:8080'],
  );
  for (const bad of ['user@host', 'http://host', 'host/path', 'host.', '*.example.com', 'a b'])
    assert.throws(() => loadConfig({ CRONQ_ALLOWED_HOSTS: bad }), /CRONQ_ALLOWED_HOSTS=/, bad);
});

test('the token bucket map never holds more clients than its bound, and refills', () => {
  let now = 0;
  const buckets = new TokenBuckets(1, 2, 100, () => now);
  fc.assert(
    fc.property(fc.array(fc.ipV4(), { minLength: 1, maxLength: 500 }), (clients) => {
      for (const c of clients) buckets.take(c);
      assert.ok(buckets.size <= 100);
    }),
  );
  const b = new TokenBuckets(1, 2, 100, () => now);
  assert.deepEqual([b.take('x'), b.take('x'), b.take('x')], [true, true, false]);
  now += 1000;
  assert.equal(b.take('x'), true, 'one token back after a second');
  assert.equal(b.take('y'), true, 'another client has its own bucket');
});
