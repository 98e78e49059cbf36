/**
 * The wire fields job policies add (docs/policies.md): a job message's
 * `start_by` and a result's status `missed`, bounded like every other field.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MessageFormatError } from '../../src/core/errors';
import { parseJobMessage, parseResultMessage } from '../../src/core/messages';

const job = { run_id: 'a'.repeat(32), job_id: 1, cmd: 'true' };
const result = {
  job_id: 1,
  run_id: 'b'.repeat(32),
  type: 'finished',
  'x-send-datetime': new Date().toISOString(),
  'x-host': 'h',
};

test('start_by: absent or null is no deadline; a readable time is kept, however far ahead', () => {
  assert.equal(parseJobMessage(JSON.stringify(job)).startBy, null);
  assert.equal(parseJobMessage(JSON.stringify({ ...job, start_by: null })).startBy, null);
  const at = '2026-12-04T01:02:03.456Z';
  assert.equal(parseJobMessage(JSON.stringify({ ...job, start_by: at })).startBy, Date.parse(at));
  // The occurrence plus a deadline of years: still a deadline.
  const far = new Date(Date.now() + 5 * 365 * 86_400_000).toISOString();
  assert.equal(parseJobMessage(JSON.stringify({ ...job, start_by: far })).startBy, Date.parse(far));
});

test('start_by that cannot be read makes the message malformed', () => {
  for (const bad of ['soon', '', 12345, true, {}, '1999-12-31T23:59:59Z', 'x'.repeat(100)])
    assert.throws(
      () => parseJobMessage(JSON.stringify({ ...job, start_by: bad })),
      (err: unknown) => err instanceof MessageFormatError && /start_by/.test(err.message),
      JSON.stringify(bad),
    );
});

test('status missed: accepted with type finished only', () => {
  const r = parseResultMessage(
    JSON.stringify({ ...result, status: 'missed', return_code: null, reason: 'late' }),
  );
  assert.equal(r.status, 'missed');
  assert.equal(r.return_code, null);
  for (const type of ['failed', 'starting', 'heartbeat'])
    assert.throws(
      () => parseResultMessage(JSON.stringify({ ...result, type, status: 'missed' })),
      /missed comes only with type finished/,
    );
  assert.throws(
    () => parseResultMessage(JSON.stringify({ ...result, status: 'skipped' })),
    MessageFormatError,
  );
});
