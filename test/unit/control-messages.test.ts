/**
 * Control orders (src/core/control/messages.ts): what a runner or injector
 * acts on is bounded and validated; anything else is refused with a
 * MessageFormatError (the consumer drops it with a log line).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  CONTROL_MAX_BYTES,
  encodeControl,
  killMessage,
  parseControlMessage,
  wakeMessage,
  WATCH_MAX_MS,
  watchMessage,
} from '../../src/core/control';
import { MessageFormatError } from '../../src/core/errors';

const runId = 'ab'.repeat(16);
const now = Date.parse('2026-12-04T05:00:00Z');
const body = (o: unknown) => Buffer.from(JSON.stringify(o));

test('a kill round-trips: run id, who asked, when, and why', () => {
  const at = new Date(now - 1000);
  const o = parseControlMessage(
    encodeControl(
      killMessage({ runId, requestedBy: 'api from 127.0.0.1', requestedAt: at, reason: 'r' }),
    ),
    now,
  );
  assert.deepEqual(o, {
    type: 'kill',
    runId,
    requestedBy: 'api from 127.0.0.1',
    requestedAt: at,
    reason: 'r',
  });
});

test('a watch round-trips, and its until is cut to WATCH_MAX_MS from receipt', () => {
  const soon = new Date(now + 5000);
  assert.deepEqual(parseControlMessage(encodeControl(watchMessage(runId, soon)), now), {
    type: 'watch',
    runId,
    until: soon.getTime(),
  });
  const far = new Date(now + 365 * 86_400_000);
  const o = parseControlMessage(encodeControl(watchMessage(runId, far)), now);
  assert.equal(o.type === 'watch' && o.until, now + WATCH_MAX_MS);
});

test('a wake round-trips', () => {
  const o = parseControlMessage(encodeControl(wakeMessage(new Date(now))), now);
  assert.deepEqual(o, { type: 'wake', requestedAt: new Date(now) });
});

test('bad orders are refused: type, run id, who, times, size, shape', () => {
  const kill = {
    type: 'kill',
    run_id: runId,
    requested_by: 'x',
    requested_at: new Date(now).toISOString(),
  };
  const bad: unknown[] = [
    null,
    [],
    'kill',
    { ...kill, type: 'KILL' },
    { ...kill, type: 'shutdown' },
    { ...kill, run_id: 'AB'.repeat(16) },
    { ...kill, run_id: runId + '0' },
    { ...kill, run_id: 12 },
    { ...kill, requested_by: '' },
    { ...kill, requested_by: 5 },
    { ...kill, requested_at: 'yesterday' },
    { ...kill, requested_at: '1999-01-01T00:00:00Z' },
    { ...kill, requested_at: new Date(now + 3 * 86_400_000).toISOString() },
    { ...kill, reason: 7 },
    { type: 'watch', run_id: runId },
    { type: 'watch', run_id: runId, until: 'never' },
    { type: 'wake' },
  ];
  for (const b of bad)
    assert.throws(() => parseControlMessage(body(b), now), MessageFormatError, JSON.stringify(b));
  assert.throws(() => parseControlMessage(Buffer.from('{not json'), now), MessageFormatError);
  const big = { ...kill, requested_by: 'x'.repeat(CONTROL_MAX_BYTES) };
  assert.throws(() => parseControlMessage(body(big), now), /over 4096 bytes/);
});

test('long free text is cut to its column, never refused', () => {
  const o = parseControlMessage(
    body({
      type: 'kill',
      run_id: runId,
      requested_by: 'y'.repeat(1000),
      requested_at: new Date(now).toISOString(),
      reason: 'z'.repeat(2000),
    }),
    now,
  );
  assert.equal(o.type === 'kill' && o.requestedBy.length, 255);
  assert.equal(o.type === 'kill' && o.reason?.length, 1024);
});

test('any bytes at all: a parsed order or a MessageFormatError, nothing else', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 300 }), (bytes) => {
      try {
        parseControlMessage(Buffer.from(bytes), now);
      } catch (err) {
        assert.ok(err instanceof MessageFormatError);
      }
    }),
  );
  fc.assert(
    fc.property(
      fc.record({
        type: fc.constantFrom('kill', 'watch', 'wake', 'x'),
        run_id: fc.oneof(fc.constant(runId), fc.string()),
        requested_by: fc.string(),
        requested_at: fc.oneof(fc.constant(new Date(now).toISOString()), fc.string()),
        until: fc.oneof(fc.constant(new Date(now).toISOString()), fc.string()),
      }),
      (o) => {
        try {
          parseControlMessage(body(o), now);
        } catch (err) {
          assert.ok(err instanceof MessageFormatError);
        }
      },
    ),
  );
});
