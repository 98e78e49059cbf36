/** test/helpers/services.ts waitFor: a failing wait reports the check's own error, not only a timeout. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { waitFor } from '../helpers/services';

test('a check still throwing at the deadline fails with its own error, the wait named', async () => {
  await assert.rejects(
    waitFor(
      () => {
        assert.equal(1 + 1, 3);
        return true;
      },
      { timeoutMs: 100, intervalMs: 10, message: 'arithmetic' },
    ),
    (err: unknown) =>
      err instanceof assert.AssertionError &&
      /waitFor: arithmetic: the check still threw this after 100 ms/.test(err.message),
  );
});

test('a check that threw once and then only returned falsy times out naming the earlier error', async () => {
  let n = 0;
  await assert.rejects(
    waitFor(
      () => {
        n += 1;
        if (n === 1) throw new Error('not listening yet');
        return false;
      },
      { timeoutMs: 100, intervalMs: 10, message: 'the server' },
    ),
    /^Error: waitFor timed out after 100 ms: the server \(earlier error: not listening yet\)$/,
  );
});

test('a check that throws at first and then succeeds returns its value', async () => {
  let n = 0;
  const v = await waitFor(
    () => {
      n += 1;
      if (n < 3) throw new Error('not yet');
      return 'ok';
    },
    { intervalMs: 1 },
  );
  assert.equal(v, 'ok');
});
