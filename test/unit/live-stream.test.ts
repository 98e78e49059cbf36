import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  LIVE_PENDING_MAX_BYTES,
  LIVE_RATE_BYTES_PER_S,
  LiveStream,
} from '../../src/runner/live-stream';
import { OUTPUT_CHUNK_MAX_BYTES, parseOutput, encodeOutput } from '../../src/core/live/messages';

const MARKER = /\[… [\d.]+ (MB|KB|bytes) not shown …\]\n/g;

describe('a live stream is thinned to its rate', () => {
  test('output slower than the rate arrives whole, in order, without a marker', () => {
    fc.assert(
      fc.property(fc.array(fc.string({ maxLength: 200 }), { maxLength: 100 }), (lines) => {
        const s = new LiveStream(Infinity, 0);
        let sent = '';
        let t = 0;
        for (const l of lines) {
          s.push(Buffer.from(`${l}\n`));
          t += 100;
          sent += s.take(t) ?? '';
        }
        sent += s.rest();
        assert.equal(sent, lines.map((l) => `${l}\n`).join(''));
      }),
    );
  });

  test('whatever is written, what is sent stays within the rate (plus one chunk), each send is at most one chunk plus its marker, and what is left out is marked', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.record({
            bytes: fc.integer({ min: 0, max: 300_000 }),
            gapMs: fc.integer({ min: 1, max: 500 }),
          }),
          { minLength: 1, maxLength: 60 },
        ),
        (steps) => {
          const s = new LiveStream(Infinity, 0);
          let t = 0;
          let sentBytes = 0;
          let written = 0;
          let marked = false;
          for (const st of steps) {
            s.push(Buffer.alloc(st.bytes, 0x61));
            written += st.bytes;
            t += st.gapMs;
            const text = s.take(t);
            if (text === undefined) continue;
            const body = text.replace(MARKER, '');
            if (body.length !== text.length) marked = true;
            assert.ok(Buffer.byteLength(body) <= OUTPUT_CHUNK_MAX_BYTES);
            sentBytes += Buffer.byteLength(body);
          }
          assert.ok(sentBytes <= OUTPUT_CHUNK_MAX_BYTES + (t / 1000) * LIVE_RATE_BYTES_PER_S + 1);
          if (written - sentBytes > LIVE_PENDING_MAX_BYTES)
            assert.ok(marked, 'a marker says output was left out');
        },
      ),
    );
  });

  test('the marker says how much was left out', () => {
    const s = new LiveStream(Infinity, 0);
    s.push(Buffer.alloc(3 * 1024 * 1024, 0x61));
    assert.match(s.take(100)!, /^\[… 3\.0 MB not shown …\]\n(a)+$/);
  });
});

describe('output messages', () => {
  test('a chunk and an end round-trip; a hostile body is refused', () => {
    const id = 'a'.repeat(32);
    assert.deepEqual(parseOutput(encodeOutput({ run_id: id, seq: 1, text: 'hi\n' })), {
      run_id: id,
      seq: 1,
      text: 'hi\n',
    });
    assert.deepEqual(
      parseOutput(encodeOutput({ run_id: id, seq: 2, end: true, status: 'failed' })),
      {
        run_id: id,
        seq: 2,
        end: true,
        status: 'failed',
      },
    );
    for (const bad of [
      'nope',
      '[]',
      '{"run_id":"x","seq":1,"text":""}',
      `{"run_id":"${id}","seq":-1,"text":""}`,
      `{"run_id":"${id}","seq":1}`,
    ])
      assert.throws(() => parseOutput(Buffer.from(bad)));
    assert.throws(() => parseOutput(Buffer.alloc(70_000, 0x20)));
  });
});
