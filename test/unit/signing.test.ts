/**
 * Message signing (src/core/signing.ts) and its settings: a message signed
 * with a key verifies with it, and any change to the body, the run id, the
 * kind, the time or the key makes it refused with a bounded reason.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { describeConfig, loadConfig } from '../../src/core/config';
import { ConfigError } from '../../src/core/errors';
import {
  createMessageSigner,
  KEY_ID_HEADER,
  MessageSigner,
  messageKey,
  parseMessageKeys,
  SIGNATURE_HEADER,
  SIGNED_AT_HEADER,
} from '../../src/core/signing';

const KEY_A = 'a'.repeat(32) + 'key-A';
const KEY_B = 'b'.repeat(32) + 'key-B';
const RUN = '0123456789abcdef0123456789abcdef';
const OTHER_RUN = 'fedcba9876543210fedcba9876543210';
const T0 = Date.UTC(2026, 11, 3, 12, 0, 0);
const HOUR = 3_600_000;
const window = { maxAgeMs: HOUR, maxFutureMs: HOUR };

function signer(keys: string[], now = T0): MessageSigner {
  return new MessageSigner(keys.map(messageKey), () => now);
}

const body = Buffer.from('{"run_id":"0123456789abcdef0123456789abcdef","cmd":"true"}');

describe('message signatures', () => {
  test('a message verifies with the key that signed it', () => {
    const s = signer([KEY_A]);
    const h = s.sign('job', RUN, body);
    assert.equal(s.verify('job', RUN, body, h, window), undefined);
  });

  test('the headers are a hex HMAC-SHA256, the signing time in ms, and the key id', () => {
    const h = signer([KEY_A]).sign('job', RUN, body);
    assert.match(h[SIGNATURE_HEADER]!, /^[0-9a-f]{64}$/);
    assert.equal(h[SIGNED_AT_HEADER], String(T0));
    assert.equal(h[KEY_ID_HEADER], messageKey(KEY_A).id);
    assert.ok(!Object.values(h).some((v) => v.includes(KEY_A)), 'the key itself is never sent');
  });

  test('an unsigned message is refused as unsigned', () => {
    assert.equal(signer([KEY_A]).verify('job', RUN, body, undefined, window), 'unsigned');
    assert.equal(signer([KEY_A]).verify('job', RUN, body, { other: 'x' }, window), 'unsigned');
  });

  test('any change to the body is a bad signature', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 0, maxLength: 200 }),
        fc.nat(),
        fc.integer({ min: 1, max: 255 }),
        (bytes, pos, flip) => {
          const original = Buffer.from(bytes);
          const s = signer([KEY_A]);
          const h = s.sign('result', RUN, original);
          assert.equal(s.verify('result', RUN, original, h, window), undefined);
          const changed = Buffer.concat([original, Buffer.from([flip])]);
          assert.equal(s.verify('result', RUN, changed, h, window), 'bad signature');
          if (original.length > 0) {
            const tampered = Buffer.from(original);
            const i = pos % tampered.length;
            tampered[i] = tampered[i]! ^ flip;
            assert.equal(s.verify('result', RUN, tampered, h, window), 'bad signature');
          }
        },
      ),
    );
  });

  test('a signature made for another run id, or for the other kind of message, is refused', () => {
    const s = signer([KEY_A]);
    const h = s.sign('job', RUN, body);
    assert.equal(s.verify('job', OTHER_RUN, body, h, window), 'bad signature');
    assert.equal(s.verify('result', RUN, body, h, window), 'bad signature');
  });

  test('a signature by a key we do not hold is refused, with or without a key id', () => {
    const h = signer([KEY_B]).sign('job', RUN, body);
    assert.equal(signer([KEY_A]).verify('job', RUN, body, h, window), 'unknown key');
    const withoutId: Record<string, string> = { ...h };
    delete withoutId[KEY_ID_HEADER];
    assert.equal(signer([KEY_A]).verify('job', RUN, body, withoutId, window), 'bad signature');
  });

  test('a forged key id does not help: the signature is checked against that key', () => {
    const h = signer([KEY_B]).sign('job', RUN, body);
    h[KEY_ID_HEADER] = messageKey(KEY_A).id;
    assert.equal(signer([KEY_A]).verify('job', RUN, body, h, window), 'bad signature');
  });

  test('a changed signing time is a bad signature (the time is signed)', () => {
    const s = signer([KEY_A]);
    const h = s.sign('job', RUN, body);
    h[SIGNED_AT_HEADER] = String(T0 + 1);
    assert.equal(s.verify('job', RUN, body, h, window), 'bad signature');
  });

  test('signed longer ago than the limit, or further ahead, is refused; inside it is accepted', () => {
    const h = signer([KEY_A], T0).sign('job', RUN, body);
    assert.equal(signer([KEY_A], T0 + HOUR).verify('job', RUN, body, h, window), undefined);
    assert.equal(
      signer([KEY_A], T0 + HOUR + 1).verify('job', RUN, body, h, window),
      'signed too long ago',
    );
    assert.equal(signer([KEY_A], T0 - HOUR).verify('job', RUN, body, h, window), undefined);
    assert.equal(
      signer([KEY_A], T0 - HOUR - 1).verify('job', RUN, body, h, window),
      'signed in the future',
    );
    // Results have no age limit: a result may wait in the queue through an outage.
    assert.equal(
      signer([KEY_A], T0 + 30 * 24 * HOUR).verify(
        'result',
        RUN,
        body,
        signer([KEY_A], T0).sign('result', RUN, body),
        {
          maxFutureMs: Infinity,
        },
      ),
      undefined,
    );
  });

  test('malformed signature headers are refused without throwing', () => {
    const s = signer([KEY_A]);
    const good = s.sign('job', RUN, body);
    const cases: Array<Record<string, unknown>> = [
      { [SIGNATURE_HEADER]: good[SIGNATURE_HEADER] },
      { [SIGNED_AT_HEADER]: good[SIGNED_AT_HEADER] },
      { ...good, [SIGNATURE_HEADER]: 'zz' },
      { ...good, [SIGNATURE_HEADER]: good[SIGNATURE_HEADER]!.toUpperCase() },
      { ...good, [SIGNED_AT_HEADER]: '-1' },
      { ...good, [SIGNED_AT_HEADER]: 12 },
      { ...good, [SIGNED_AT_HEADER]: '1e12' },
      { ...good, [KEY_ID_HEADER]: 'not-an-id' },
      { ...good, [SIGNATURE_HEADER]: Buffer.alloc(10_000, 0x61) },
    ];
    for (const h of cases)
      assert.equal(s.verify('job', RUN, body, h, window), 'malformed signature headers');
  });

  test('headers that arrive as byte strings (Buffers) verify', () => {
    const s = signer([KEY_A]);
    const h = s.sign('job', RUN, body);
    const asBuffers = Object.fromEntries(
      Object.entries(h).map(([k, v]) => [k, Buffer.from(v, 'latin1')]),
    );
    assert.equal(s.verify('job', RUN, body, asBuffers, window), undefined);
  });

  test('rotation: the first key signs, every listed key verifies', () => {
    const old = signer([KEY_A]);
    const rotating = signer([KEY_B, KEY_A]);
    const byOld = old.sign('job', RUN, body);
    const byNew = rotating.sign('job', RUN, body);
    assert.equal(byNew[KEY_ID_HEADER], messageKey(KEY_B).id);
    assert.equal(rotating.verify('job', RUN, body, byOld, window), undefined);
    assert.equal(signer([KEY_A, KEY_B]).verify('job', RUN, body, byNew, window), undefined);
    assert.equal(old.verify('job', RUN, body, byNew, window), 'unknown key');
  });
});

describe('CRONQ_MESSAGE_KEY and CRONQ_MESSAGE_MAX_AGE_SECONDS', () => {
  test('signing is off by default', () => {
    const c = loadConfig({});
    assert.deepEqual(c.signing.keys, []);
    assert.equal(c.signing.jobMaxAgeMs, 3_600_000);
    assert.equal(createMessageSigner(c.signing.keys), undefined);
    assert.equal(describeConfig(c).messageSigning, 'off');
  });

  test('one key or several separated by commas or spaces; the first signs', () => {
    assert.deepEqual(loadConfig({ CRONQ_MESSAGE_KEY: KEY_A }).signing.keys, [KEY_A]);
    assert.deepEqual(loadConfig({ CRONQ_MESSAGE_KEY: ` ${KEY_B}, ${KEY_A} ` }).signing.keys, [
      KEY_B,
      KEY_A,
    ]);
    assert.deepEqual(parseMessageKeys(`${KEY_A}\n${KEY_B}`), [KEY_A, KEY_B]);
    const s = createMessageSigner(
      loadConfig({ CRONQ_MESSAGE_KEY: `${KEY_B},${KEY_A}` }).signing.keys,
    )!;
    assert.equal(s.sign('job', RUN, body)[KEY_ID_HEADER], messageKey(KEY_B).id);
  });

  test('a short key is a ConfigError that names the setting and never shows the key', () => {
    for (const raw of ['short', `${KEY_A},tooshort`]) {
      assert.throws(
        () => loadConfig({ CRONQ_MESSAGE_KEY: raw }),
        (err: unknown) => {
          assert.ok(err instanceof ConfigError);
          assert.ok(err.message.startsWith('CRONQ_MESSAGE_KEY='), err.message);
          assert.match(err.message, /at least 32 characters/);
          assert.ok(!err.message.includes('short') && !err.message.includes(KEY_A));
          return true;
        },
      );
    }
  });

  test('the key is never in what is logged of the config', () => {
    const c = loadConfig({ CRONQ_MESSAGE_KEY: KEY_A });
    const logged = JSON.stringify(describeConfig(c));
    assert.ok(!logged.includes(KEY_A));
    assert.equal(describeConfig(c).messageSigning, 'on');
  });

  test('the age limit is read in seconds and bounded', () => {
    assert.equal(loadConfig({ CRONQ_MESSAGE_MAX_AGE_SECONDS: '900' }).signing.jobMaxAgeMs, 900_000);
    for (const bad of ['0', '59', 'abc', String(31 * 86400)])
      assert.throws(
        () => loadConfig({ CRONQ_MESSAGE_MAX_AGE_SECONDS: bad }),
        /^ConfigError: CRONQ_MESSAGE_MAX_AGE_SECONDS=|CRONQ_MESSAGE_MAX_AGE_SECONDS=/,
      );
  });
});
