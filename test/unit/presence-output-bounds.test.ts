/**
 * Bounds found by attacking today's inputs: a runner announcement the
 * database could not store is refused (one would fail the whole batch of
 * every runner's), and an output tail fed a byte at a time, or alternating
 * streams, stays small and fast.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parsePresence } from '../../src/core/presence';
import { OutputTail } from '../../src/runner/output-tail';

const good = {
  instance: 'h.1',
  host: 'h',
  pid: 1,
  queue: 'cronq_jobs',
  concurrency: 4,
  running: 0,
  version: '0.1.0',
  started_at: '2026-12-04T06:00:00.000Z',
  period_ms: 10_000,
};

test('a presence whose started_at the database cannot store is refused, a good one read', () => {
  assert.deepEqual(parsePresence(Buffer.from(JSON.stringify(good))), good);
  for (const started_at of [
    '+020000-01-01T00:00:00Z',
    '0000-01-01T00:00:00Z',
    '1969-12-31T00:00:00Z',
    'x',
  ])
    assert.match(
      (parsePresence(Buffer.from(JSON.stringify({ ...good, started_at }))) as { error: string })
        .error,
      /started_at/,
      started_at,
    );
});

test('an output tail fed one byte at a time keeps a bounded number of chunks', () => {
  const tail = new OutputTail(65_536);
  const one = Buffer.from('.');
  for (let i = 0; i < 200_000; i++) tail.push(one, i % 2 === 0 ? 'out' : 'err');
  const chunks = (tail as unknown as { chunks: Buffer[] }).chunks.length;
  assert.ok(chunks <= 1025, `${chunks} chunks kept`);
  assert.equal(tail.text().length, 65_536);
  const spans = (tail as unknown as { stderr: unknown[] }).stderr.length;
  assert.ok(spans <= 2 * 4096 + 1, `${spans} stderr spans kept`);
});
