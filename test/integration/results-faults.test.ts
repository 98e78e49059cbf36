import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createDb } from '../../src/core/db';
import { parseDatabaseUrl } from '../../src/core/config';
import { RESULTS_QUEUE } from '../../src/core/topology';
import { queueCounts, rabbitmqctl, waitFor, useServices } from '../helpers/services';
import { startCommand, type Proc } from '../helpers/processes';
import {
  insertJob,
  newRunId,
  resultMessage,
  ResultPublisher,
  type WireResult,
} from '../helpers/results';

/**
 * Faults the results consumer must ride out: its database connections
 * killed in the middle of batches, SIGTERM with a batch in hand, and two
 * consumers sharing the queue. Only this file's own database connections
 * are killed (filtered by database name), so nothing else is disturbed.
 */

const svc = useServices();
let pub: ResultPublisher;

function startConsumer(env: Record<string, string> = {}): Proc {
  return svc.track(
    startCommand('cronq-results', {
      env: {
        DATABASE_URL: svc.db.url,
        RABBITMQ_URL: svc.vhost.url,
        CRONQ_LOG_LEVEL: 'info',
        ...env,
      },
    }),
  );
}

/** starting + finished for `runs` new runs spread over `jobIds`. */
function pairs(jobIds: number[], runs: number): { messages: WireResult[]; runIds: string[] } {
  const messages: WireResult[] = [];
  const runIds: string[] = [];
  for (let i = 0; i < runs; i += 1) {
    const jobId = jobIds[i % jobIds.length]!;
    const runId = newRunId();
    runIds.push(runId);
    const start = new Date(Date.now() - 60_000 + i).toISOString();
    messages.push(
      resultMessage('starting', jobId, runId, { start_time: start }),
      resultMessage('finished', jobId, runId, {
        start_time: start,
        return_code: i % 7 === 0 ? 1 : 0,
        status: undefined,
      }),
    );
  }
  return { messages, runIds };
}

async function countWhere(sql: string, bindings: readonly (string | number)[]): Promise<number> {
  const [rows] = (await svc.db.db.raw(sql, bindings)) as [Array<{ n: number }>];
  return Number(rows[0]!.n);
}

async function assertAllStoredOnce(runIds: string[], jobIds: number[]): Promise<void> {
  const inList = jobIds.map(() => '?').join(',');
  await waitFor(
    async () =>
      (await countWhere(
        `SELECT COUNT(*) AS n FROM runs WHERE job_id IN (${inList}) AND status IN ('succeeded','failed')`,
        jobIds,
      )) === runIds.length,
    {
      timeoutMs: 40_000,
      message: `all ${runIds.length} runs final`,
    },
  );
  assert.equal(
    await countWhere(`SELECT COUNT(*) AS n FROM events WHERE job_id IN (${inList})`, jobIds),
    runIds.length * 2,
    'one event per message',
  );
  assert.equal(
    await countWhere(`SELECT COUNT(*) AS n FROM runs WHERE job_id IN (${inList})`, jobIds),
    runIds.length,
    'one run row per run',
  );
  assert.equal(
    await countWhere(
      `SELECT COUNT(*) AS n FROM (SELECT run_id FROM events WHERE job_id IN (${inList}) GROUP BY run_id, type HAVING COUNT(*) > 1) d`,
      jobIds,
    ),
    0,
    'no event stored twice',
  );
  // Each job's status columns follow its newest run.
  const [mismatch] = (await svc.db.db.raw(
    `SELECT j.id FROM jobs j WHERE j.id IN (${inList}) AND NOT (j.last_run_status <=> (SELECT r.status FROM runs r WHERE r.job_id = j.id ORDER BY r.scheduled_for DESC LIMIT 1))`,
    jobIds,
  )) as [unknown[]];
  assert.deepEqual(mismatch, [], 'job status follows the newest run');
  await waitFor(async () => (await queueCounts(svc.vhost.vhost, RESULTS_QUEUE)).messages === 0, {
    message: 'results queue empty',
  });
}

describe('cronq-results under faults', () => {
  // Inside the describe: the file-level hooks (useServices) have run by then.
  before(async () => {
    pub = await ResultPublisher.open(await svc.vhost.connect());
  });

  test('database connections killed mid-batch: the batches are requeued and every result is stored once', async () => {
    const consumer = startConsumer({ CRONQ_RESULTS_PREFETCH: '500' });
    await pub.waitForConsumers(1, 40_000);
    const jobIds = await Promise.all([1, 2, 3, 4, 5].map((i) => insertJob(svc.db.db, `kill-${i}`)));
    const { messages, runIds } = pairs(jobIds, 10_000);
    const published = pub.publish(...messages);

    // KILL this database's connections (the consumer's) again and again while it writes.
    const admin = createDb(parseDatabaseUrl(svc.db.url), { withoutDatabase: true, poolMax: 1 });
    let killed = 0;
    try {
      const until = Date.now() + 4000;
      while (Date.now() < until) {
        const [rows] = (await admin.raw(
          'SELECT id FROM information_schema.processlist WHERE db = ? AND id <> CONNECTION_ID()',
          [svc.db.name],
        )) as [Array<{ id: number }>];
        for (const r of rows) {
          await admin.raw(`KILL ${Number(r.id)}`).catch(() => undefined);
          killed += 1;
        }
        await new Promise((r) => setTimeout(r, 150));
      }
    } finally {
      await admin.destroy();
    }
    await published;
    assert.ok(killed > 0, 'connections were killed');
    await assertAllStoredOnce(runIds, jobIds);
    assert.ok(
      consumer.lines().some((l) => l.includes('could not store results')),
      'at least one batch failed and was handed back',
    );
    assert.equal(consumer.child.exitCode, null, 'the consumer is still running');
    const stop = await consumer.stop();
    assert.equal(stop.code, 0);
  });

  test('its broker connection closed: the consumer reconnects by itself and stores what comes after', async () => {
    const consumer = startConsumer({ CRONQ_HOSTNAME: 'cut.example.com' });
    await pub.waitForConsumers(1, 40_000);
    const jobId = await insertJob(svc.db.db, 'conn-cut');
    const { messages, runIds } = pairs([jobId], 50);
    await pub.publish(...messages.slice(0, 50));
    // Only this consumer's connection, in this test's vhost: disturbs no one else.
    const rows = (
      await rabbitmqctl('list_connections', '-q', 'pid', 'vhost', 'client_properties')
    ).split('\n');
    const row = rows.find(
      (r) =>
        r.includes(`\t${svc.vhost.vhost}\t`) &&
        r.includes(`cronq-results cut.example.com.${consumer.child.pid}"`),
    );
    assert.ok(row, 'consumer connection found');
    await rabbitmqctl('close_connection', row.split('\t')[0]!, 'test cut');
    // Published after the cut: stored only if the consumer comes back by itself.
    await pub.publish(...messages.slice(50));
    await assertAllStoredOnce(runIds, [jobId]);
    assert.equal((await consumer.stop()).code, 0);
  });

  test('SIGTERM writes and acks the batch in hand, then exits 0', async () => {
    // A long flush delay keeps the delivered messages in hand until the signal.
    const consumer = startConsumer({
      CRONQ_RESULTS_FLUSH_MS: '10000',
      CRONQ_RESULTS_PREFETCH: '100',
    });
    await pub.waitForConsumers(1, 40_000);
    const jobId = await insertJob(svc.db.db, 'sigterm');
    const { messages, runIds } = pairs([jobId], 10);
    await pub.publish(...messages);
    await waitFor(async () => (await queueCounts(svc.vhost.vhost, RESULTS_QUEUE)).unacked === 20, {
      message: '20 deliveries in hand',
    });
    const t0 = Date.now();
    const exit = await consumer.stop(8000);
    assert.equal(exit.code, 0);
    // Bound: the flush timer is 10 s; exiting sooner shows stop() did not wait for it.
    assert.ok(Date.now() - t0 < 8000, 'exits without waiting for the flush timer');
    await assertAllStoredOnce(runIds, [jobId]);
  });

  test('two consumers at once store each message once', async () => {
    const a = startConsumer({ CRONQ_RESULTS_PREFETCH: '50' });
    const b = startConsumer({ CRONQ_RESULTS_PREFETCH: '50' });
    await pub.waitForConsumers(2, 40_000);
    const jobIds = await Promise.all(
      Array.from({ length: 8 }, (_, i) => insertJob(svc.db.db, `two-${i}`)),
    );
    const { messages, runIds } = pairs(jobIds, 3000);
    await pub.publish(...messages);
    await assertAllStoredOnce(runIds, jobIds);
    const [ea, eb] = await Promise.all([a.stop(), b.stop()]);
    assert.equal(ea.code, 0);
    assert.equal(eb.code, 0);
    const stored = (p: Proc) => {
      const line = p.lines().find((l) => l.includes('results consumer stopped'));
      return line ? Number((JSON.parse(line) as { stored: number }).stored) : 0;
    };
    assert.ok(
      stored(a) > 0 && stored(b) > 0,
      `both consumers did work (${stored(a)} + ${stored(b)})`,
    );
  });
});
