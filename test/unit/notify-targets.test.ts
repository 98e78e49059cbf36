import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { signBody, verifyBody } from '../../src/core/notify/signature';
import { parseNotifyTargets, targetLabel } from '../../src/core/notify/targets';
import { tailBytes } from '../../src/results/notify/body';
import { categoryProblems } from '../../src/core/category';
import { loadConfig } from '../../src/core/config';

describe('webhook signatures', () => {
  const secret = 'a-secret-of-enough-length';
  test('a body verifies with its own signature and timestamp, and with nothing else', () => {
    fc.assert(
      fc.property(
        fc.string({ maxLength: 500 }),
        fc.string({ minLength: 1, maxLength: 50 }),
        (body, other) => {
          const now = 1_700_000_000;
          const sig = signBody(secret, now, body);
          assert.match(sig, /^v1=[0-9a-f]{64}$/);
          assert.equal(verifyBody(secret, String(now), body, sig, now), true);
          assert.equal(
            verifyBody(secret, String(now), body + other, sig, now),
            false,
            'another body',
          );
          assert.equal(
            verifyBody(`${secret}x`, String(now), body, sig, now),
            false,
            'another secret',
          );
          assert.equal(
            verifyBody(secret, String(now + 1), body, sig, now),
            false,
            'another timestamp',
          );
        },
      ),
    );
  });

  test('an old timestamp is refused (replay), even with a right signature', () => {
    const sig = signBody(secret, 1000, '{}');
    assert.equal(verifyBody(secret, '1000', '{}', sig, 1000 + 301), false);
    assert.equal(verifyBody(secret, '1000', '{}', sig, 1000 + 299), true);
    assert.equal(verifyBody(secret, '1e3', '{}', sig, 1000), false);
  });
});

describe('notify targets are bounded', () => {
  const bad: Array<[unknown, RegExp]> = [
    [{ webhook: 'ftp://example.com/x' }, /http:\/\/ or https:\/\//],
    [{ webhook: 'file:///etc/passwd' }, /http:\/\/ or https:\/\//],
    [{ webhook: `https://example.com/${'a'.repeat(3000)}` }, /at most 2048/],
    [{ webhook: 'https://user:pw@example.com/' }, /user or password/],
    [{ webhook: 'https://example.com/', email: ['a@example.com'] }, /exactly one/],
    [{ on: ['failed'] }, /exactly one/],
    [{ email: ['not an address'] }, /e-mail addresses/],
    [{ email: Array.from({ length: 11 }, (_, i) => `a${i}@example.com`) }, /1 to 10/],
    [{ email: ['a@example.com'], format: 'slack' }, /only a webhook/],
    [{ webhook: 'https://example.com/', on: ['sometimes'] }, /must list one or more/],
    [{ webhook: 'https://example.com/', repeat_after: 'PT5S' }, /at least one minute/],
    [{ webhook: 'https://example.com/', repeat_after: 'P1M' }, /months/],
    [{ webhook: 'https://example.com/', extra: 1 }, /unknown field "extra"/],
  ];
  for (const [t, msg] of bad)
    test(`refuses ${JSON.stringify(t).slice(0, 80)}`, () => {
      const { targets, errors } = parseNotifyTargets([t]);
      assert.deepEqual(targets, []);
      assert.match(errors.join('\n'), msg);
    });

  test('at most 10 targets', () => {
    const many = Array.from({ length: 11 }, () => ({ webhook: 'https://example.com/' }));
    assert.match(parseNotifyTargets(many).errors[0]!, /at most 10/);
  });

  test('the validator names the field and refuses; a good one passes', () => {
    const doc = (notify: unknown) => ({
      category: 'c',
      notify,
      jobs: [{ name: 'j', schedule: 'R/2024-01-01T00:00:00Z/PT1M', command: 'true' }],
    });
    const p = categoryProblems(doc([{ on: ['failed'], webhook: 'gopher://x' }]));
    assert.deepEqual(p, [
      { path: 'notify[0].webhook', message: 'must be an http:// or https:// URL' },
    ]);
    assert.deepEqual(
      categoryProblems(
        doc([
          { on: ['failed', 'recovered'], webhook: 'https://hooks.example.com/x', format: 'slack' },
          { on: ['failed'], email: ['ops@example.com'], repeat_after: 'PT30M' },
        ]),
      ),
      [],
    );
  });

  test('a label never shows a webhook path (a Slack-style URL carries its secret there)', () => {
    const [t] = parseNotifyTargets([
      { webhook: 'https://hooks.example.com/services/T0/B0/SECRET' },
    ]).targets;
    assert.equal(targetLabel(t!), 'webhook https://hooks.example.com/…');
  });

  test('the settings: global targets from CRONQ_NOTIFY_*, secrets checked, bad values refused', () => {
    const c = loadConfig({
      CRONQ_NOTIFY_WEBHOOK: 'https://example.com/hook',
      CRONQ_NOTIFY_ON: 'failed,recovered',
      CRONQ_NOTIFY_EMAIL: 'ops@example.com',
      CRONQ_SMTP_URL: 'smtp://mail.example.com:25',
    });
    assert.equal(c.notify.targets.length, 2);
    assert.deepEqual(c.notify.targets[0]!.on, ['failed', 'recovered']);
    assert.throws(() => loadConfig({ CRONQ_NOTIFY_WEBHOOK: 'ftp://x' }), /CRONQ_NOTIFY_WEBHOOK/);
    assert.throws(() => loadConfig({ CRONQ_NOTIFY_EMAIL: 'ops@example.com' }), /CRONQ_SMTP_URL/);
    assert.throws(() => loadConfig({ CRONQ_WEBHOOK_SECRET: 'short' }), /CRONQ_WEBHOOK_SECRET/);
    assert.throws(
      () => loadConfig({ CRONQ_NOTIFY_RETRY_BASE_MS: '5' }),
      /CRONQ_NOTIFY_RETRY_BASE_MS/,
    );
  });
});

describe('the output a notification carries', () => {
  test('is the last bytes, never cut inside a character', () => {
    fc.assert(
      fc.property(
        fc.string({ unit: 'binary', maxLength: 3000 }),
        fc.integer({ min: 0, max: 5000 }),
        (s, n) => {
          const t = tailBytes(s, n);
          assert.ok(Buffer.byteLength(t) <= Math.max(n, 0) || Buffer.byteLength(s) <= n);
          assert.ok(s.endsWith(t));
        },
      ),
    );
  });
});
