/**
 * The notification outbox against the real database (docs/notifications.md):
 * what the results wrote is moved into `notifications` once; a malformed
 * item is dropped and the good ones beside it still move; a row that cannot
 * be moved is set aside with its reason, and the rows after it go on. And
 * a job's repeat_after marks (jobs.notify_marks) keep only today's targets.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createTestDatabase, type TestDatabase } from '../helpers/services';
import {
  moveOutbox,
  OUTBOX_ROW_BYTES,
  writeOutbox,
  type OutboxItem,
} from '../../src/results/notify/outbox';
import { takeMissedNotices } from '../../src/results/notify/missed';
import { parseNotifyTargets, targetKey } from '../../src/core/notify/targets';

let tdb: TestDatabase;
before(async () => {
  tdb = await createTestDatabase();
});
after(async () => {
  await tdb.drop();
});

const item = (jobId: number, over: Partial<OutboxItem> = {}): OutboxItem => ({
  job_id: jobId,
  job_name: `job ${jobId}`,
  category: 'c',
  run_id: null,
  event: 'failed',
  failures: 1,
  target_key: '0123456789abcdef',
  target: { on: ['failed'], webhook: 'https://example.com/h' },
  ...over,
});

async function outboxRow(items: unknown[]): Promise<void> {
  await tdb.db('notification_outbox').insert({
    created_at: new Date(),
    items: JSON.stringify(items),
  });
}

/** A job in a category of its own that notifies `notify`; its id. */
async function notifyingJob(
  category: string,
  notify: unknown[],
  job: Record<string, unknown> & { name: string },
): Promise<number> {
  const [cat] = await tdb
    .db('categories')
    .insert({ name: category, notify: JSON.stringify(notify) });
  const [jobId] = await tdb
    .db('jobs')
    .insert({ command: 'true', category_id: cat, routing_key: 'default', ...job });
  return jobId!;
}

const moveAll = async () => {
  const all = { moved: 0, bad: 0, setAside: [] as Array<{ id: number; error: string }> };
  for (;;) {
    const m = await moveOutbox(tdb.db);
    all.moved += m.moved;
    all.bad += m.bad;
    all.setAside.push(...m.setAside);
    if (m.rows === 0) return all;
  }
};

test('a poison item or row is set aside; everything else is moved once', async () => {
  await outboxRow([item(1)]);
  // Out of the INT column's range: dropped, the good item beside it moves.
  await outboxRow([item(2), item(2 ** 40), item(3, { failures: -1 }), item(4)]);
  // Longer than a row may be: set aside whole, with why.
  await tdb.db('notification_outbox').insert({
    created_at: new Date(),
    items: JSON.stringify([item(5, { target: { pad: 'x'.repeat(OUTBOX_ROW_BYTES) } })]),
  });
  await outboxRow([item(6)]);
  const all = await moveAll();
  assert.equal(all.moved, 4);
  assert.equal(all.bad, 2);
  assert.equal(all.setAside.length, 1);
  assert.match(all.setAside[0]!.error, /over 1048576/);
  const jobs = (await tdb.db('notifications').select('job_id').orderBy('job_id')).map((r) =>
    Number(r.job_id),
  );
  assert.deepEqual(jobs, [1, 2, 4, 6]);
  const left = await tdb.db('notification_outbox').select('failed');
  assert.equal(left.length, 1, 'only the set-aside row is left');
  assert.match(left[0]!.failed, /over 1048576/);
  // Not taken again.
  assert.deepEqual(await moveOutbox(tdb.db), { rows: 0, moved: 0, bad: 0, setAside: [] });
});

test('what the results write is split by count and by bytes, and moved whole', async () => {
  await tdb.db('notification_outbox').del();
  await tdb.db('notifications').del();
  const big = { on: ['failed'], email: Array.from({ length: 10 }, () => 'a'.repeat(240)) };
  const items = Array.from({ length: 1200 }, (_, i) => item(i + 1, { target: big }));
  await tdb.db.transaction((trx) => writeOutbox(trx, items, '2026-01-01 00:00:00.000'));
  const rows = (await tdb
    .db('notification_outbox')
    .select(tdb.db.raw('LENGTH(items) AS bytes'))) as Array<{ bytes: number }>;
  assert.ok(rows.length >= 3, `${rows.length} rows`);
  for (const r of rows) assert.ok(Number(r.bytes) <= OUTBOX_ROW_BYTES, `${r.bytes} bytes`);
  const all = await moveAll();
  assert.equal(all.moved, 1200);
  const [{ n }] = (await tdb.db('notifications').count('* as n')) as [{ n: number }];
  assert.equal(Number(n), 1200);
});

test('a move inserts a row of large targets in several statements, far below max_allowed_packet', async () => {
  await tdb.db('notification_outbox').del();
  await tdb.db('notifications').del();
  // 15 notifications of 60 KB targets: one 900 KB row, which one INSERT
  // would carry whole (twice that escaped, past a 1 MiB max_allowed_packet).
  const items = Array.from({ length: 15 }, (_, i) =>
    item(i + 1, { target: { on: ['failed'], pad: 'x'.repeat(60_000) } }),
  );
  await outboxRow(items);
  const inserts: number[] = [];
  const onQuery = (q: { sql: string; bindings?: unknown[] }) => {
    if (q.sql.startsWith('INSERT INTO notifications')) inserts.push(q.bindings?.length ?? 0);
  };
  tdb.db.on('query', onQuery);
  try {
    assert.equal((await moveAll()).moved, 15);
  } finally {
    tdb.db.off('query', onQuery);
  }
  assert.ok(inserts.length >= 4, `${inserts.length} INSERT statements`);
  assert.equal(
    inserts.reduce((a, b) => a + b, 0),
    15 * 10,
    'every notification inserted once',
  );
});

test("a job's repeat_after marks keep only the targets that apply now", async () => {
  const notify = [{ on: ['missed'], webhook: 'https://example.com/now' }];
  // Failing for an hour, last told a target since removed from the file.
  const jobId = await notifyingJob('marks', notify, {
    name: 'marked',
    failing_since: new Date(Date.now() - 3_600_000),
    failures: 3,
    notify_marks: JSON.stringify({ ['f'.repeat(16)]: Date.now() - 3_600_000 }),
  });
  await tdb
    .db('run_notices')
    .insert({ run_id: 'a'.repeat(32), job_id: jobId, created_at: new Date() });
  const took = await takeMissedNotices(tdb.db, []);
  assert.equal(took.notifications, 1);
  const [job] = await tdb.db('jobs').where({ id: jobId }).select('notify_marks', 'failures');
  const current = targetKey(parseNotifyTargets(notify).targets[0]!);
  assert.deepEqual(Object.keys(JSON.parse(job.notify_marks)), [current]);
  assert.equal(job.failures, 4);
});

test('a missed occurrence told after a later one succeeded notifies but opens no failing streak', async () => {
  const jobId = await notifyingJob(
    'stale',
    [{ on: ['missed'], webhook: 'https://example.com/missed' }],
    { name: 'caught up' },
  );
  const t = Date.now() - 3_600_000;
  const missed = 'b'.repeat(32);
  await tdb.db('runs').insert([
    {
      run_id: missed,
      job_id: jobId,
      scheduled_for: new Date(t),
      status: 'missed',
      queued_at: new Date(t),
    },
    {
      run_id: 'c'.repeat(32),
      job_id: jobId,
      scheduled_for: new Date(t + 60_000),
      status: 'succeeded',
      queued_at: new Date(t + 60_000),
    },
  ]);
  await tdb.db('run_notices').insert({ run_id: missed, job_id: jobId, created_at: new Date() });
  const took = await takeMissedNotices(tdb.db, []);
  assert.equal(took.notifications, 1, 'the missed occurrence is told');
  const [job] = await tdb
    .db('jobs')
    .where({ id: jobId })
    .select('failing_since', 'failures', 'notify_marks');
  assert.deepEqual(job, { failing_since: null, failures: 0, notify_marks: null });
});
