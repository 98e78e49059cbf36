import { readFileSync } from 'node:fs';
import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { queueCounts, useServices, waitFor } from '../helpers/services';
import { startCommand, type Proc } from '../helpers/processes';
import {
  eventsOf,
  insertJob,
  insertRun,
  newRunId,
  resultMessage,
  ResultPublisher,
  runRow,
  type WireResult,
} from '../helpers/results';
import { RESULTS_DEAD_QUEUE, RESULTS_QUEUE } from '../../src/core/topology';
import type { RunRow } from '../../src/core/runs';

/**
 * Hostile result messages against the real cronq-results process, the real
 * MariaDB and RabbitMQ (issue #14): poison fields, oversized fields, a
 * message the database refuses, and replayed results for finished runs.
 * One consumer for the file; each test has its own jobs and runs.
 */

const svc = useServices();
let pub: ResultPublisher;
let consumer: Proc;

async function runIn(runId: string, status: string): Promise<RunRow> {
  return waitFor(
    async () => {
      const r = await runRow(svc.db.db, runId);
      return r && r.status === status ? r : undefined;
    },
    { timeoutMs: 30_000, message: `run ${runId} ${status}` },
  );
}

/** Everything published before a marker's `starting` has been handled once the marker is running. */
async function drain(jobId: number): Promise<void> {
  const marker = newRunId();
  await pub.publish(resultMessage('starting', jobId, marker));
  await runIn(marker, 'running');
}

interface DeadLetter {
  body: string;
  reason: string;
}

/** Take `n` messages off cronq_results_dead. */
async function deadLetters(n: number): Promise<DeadLetter[]> {
  const got: DeadLetter[] = [];
  await waitFor(
    async () => {
      const m = await pub.channel.get(RESULTS_DEAD_QUEUE, { noAck: true });
      if (m)
        got.push({
          body: m.content.toString('utf8'),
          reason: String(m.properties.headers?.['x-cronq-dead-reason']),
        });
      return got.length >= n;
    },
    { timeoutMs: 30_000, message: `${n} dead letters` },
  );
  return got;
}

async function queueEmpty(): Promise<void> {
  await waitFor(async () => (await queueCounts(svc.vhost.vhost, RESULTS_QUEUE)).messages === 0, {
    timeoutMs: 30_000,
    message: 'nothing left in cronq_results (no message retried forever)',
  });
}

/** Peak resident memory of a process, in bytes (Linux). */
function peakRss(pid: number): number {
  const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m![1]) * 1024;
}

describe('cronq-results with hostile messages', () => {
  before(async () => {
    pub = await ResultPublisher.open(await svc.vhost.connect());
    consumer = svc.track(
      startCommand('cronq-results', {
        env: {
          DATABASE_URL: svc.db.url,
          RABBITMQ_URL: svc.vhost.url,
          CRONQ_RESULTS_FLUSH_MS: '20',
          CRONQ_OUTPUT_TAIL_BYTES: '65536',
        },
      }),
    );
    await pub.waitForConsumers(1, 40_000);
  });

  test('results whose times or numbers are out of range are dead-lettered with a short reason; the good ones beside them are stored and the consumer stays up', async () => {
    const jobId = await insertJob(svc.db.db, 'poison-times');
    const good = [newRunId(), newRunId()];
    const poison: WireResult[] = [
      resultMessage('finished', jobId, newRunId(), { 'x-send-datetime': 1e13 }),
      resultMessage('finished', jobId, newRunId(), { start_time: '99999999999999' }),
      resultMessage('starting', jobId, newRunId(), { 'x-send-datetime': '9999-12-31T23:59:59Z' }),
      resultMessage('finished', jobId, newRunId(), { return_code: 2 ** 40 }),
      resultMessage('finished', jobId, newRunId(), { run_time: 1e300 }),
      resultMessage('starting', 2 ** 40, newRunId()),
    ];
    await pub.publish(
      resultMessage('finished', jobId, good[0]!),
      ...poison,
      resultMessage('finished', jobId, good[1]!),
    );
    for (const runId of good) await runIn(runId, 'succeeded');
    const dead = await deadLetters(poison.length);
    assert.deepEqual(
      dead.map((d) => d.body).sort(),
      poison.map((p) => JSON.stringify(p)).sort(),
      'each poison message is dead-lettered unchanged',
    );
    for (const d of dead) {
      assert.ok(d.reason.length > 0 && d.reason.length <= 240, `short reason: ${d.reason}`);
      assert.match(
        d.reason,
        /x-send-datetime|start_time|return_code|run_time|job_id/,
        'names the field',
      );
    }
    for (const p of poison)
      assert.equal(await runRow(svc.db.db, String(p.run_id)), undefined, 'poison stores nothing');
    await queueEmpty();
    assert.equal(consumer.child.exitCode, null, 'the consumer is still running');
    // ... and still consuming on the same footing.
    await drain(jobId);
  });

  test('a 10 MB output and a 200 KB name are stored cut to their bounds beside good results; memory stays bounded and nothing is retried forever', async () => {
    const jobId = await insertJob(svc.db.db, 'oversized');
    const big = newRunId();
    const named = newRunId();
    const good = [newRunId(), newRunId(), newRunId()];
    // Quotes double when escaped into SQL: this output alone makes a 20 MB
    // statement, over the server's 16 MiB max_allowed_packet.
    const output = `${"'".repeat(10 * 1024 * 1024)}THE-END\n`;
    const longName = 'é'.repeat(100 * 1024); // 200 KB of two-byte characters
    await pub.publish(
      resultMessage('finished', jobId, good[0]!),
      resultMessage('finished', jobId, big, { output }),
      resultMessage('finished', jobId, good[1]!),
      resultMessage('finished', jobId, named, { name: longName }),
      resultMessage('finished', jobId, good[2]!),
    );
    for (const runId of good) await runIn(runId, 'succeeded');
    const bigRow = await runIn(big, 'succeeded');
    assert.equal(
      Buffer.byteLength(bigRow.output_tail!),
      65536,
      'output cut to the configured tail',
    );
    assert.ok(bigRow.output_tail!.endsWith("''THE-END\n"), 'the tail (the end) is what is kept');
    const unrecorded = await runIn(named, 'succeeded');
    assert.equal(unrecorded.job_name, 'é'.repeat(255), 'name cut to the column (characters)');
    await queueEmpty();
    assert.equal(consumer.child.exitCode, null, 'the consumer is still running');
    const rss = peakRss(consumer.child.pid!);
    assert.ok(rss < 400 * 1024 * 1024, `peak memory ${Math.round(rss / 2 ** 20)} MiB`);
  });

  test('a result the database refuses, whatever the error, is dead-lettered alone with a reason without SQL; a table gone away is waited for, not dead-lettered', async () => {
    const jobId = await insertJob(svc.db.db, 'refused');
    // A server-side refusal of one message's row that is not a data error (SQLSTATE 45000).
    await svc.db.db.raw(`CREATE TRIGGER refuse_exploding_host BEFORE INSERT ON runs FOR EACH ROW
      BEGIN
        IF NEW.host = 'explode.example.com' THEN
          SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'refused by the test trigger';
        END IF;
      END`);
    try {
      // First the events table goes away: every write fails while the server
      // answers, and no message may be dead-lettered for it.
      await svc.db.db.raw('RENAME TABLE events TO events_away');
      const during = [newRunId(), newRunId()];
      await pub.publish(...during.map((r) => resultMessage('finished', jobId, r)));
      await consumer.waitForLine('could not store results');
      await new Promise((r) => setTimeout(r, 1500));
      assert.equal((await pub.channel.checkQueue(RESULTS_DEAD_QUEUE)).messageCount, 0);
      await svc.db.db.raw('RENAME TABLE events_away TO events');
      for (const r of during) await runIn(r, 'succeeded');

      const bad = newRunId();
      const good = [newRunId(), newRunId(), newRunId(), newRunId()];
      const badMsg = resultMessage('finished', jobId, bad, { 'x-host': 'explode.example.com' });
      await pub.publish(
        ...good.slice(0, 2).map((r) => resultMessage('finished', jobId, r)),
        badMsg,
        ...good.slice(2).map((r) => resultMessage('finished', jobId, r)),
      );
      for (const r of good) await runIn(r, 'succeeded');
      const [dead] = await deadLetters(1);
      assert.equal(dead!.body, JSON.stringify(badMsg));
      assert.match(dead!.reason, /refused by the test trigger/);
      assert.ok(dead!.reason.length <= 240, 'short');
      assert.doesNotMatch(dead!.reason, /INSERT|SELECT|VALUES/i, 'no SQL in the reason');
      assert.equal(await runRow(svc.db.db, bad), undefined);
      assert.equal(
        (await pub.channel.checkQueue(RESULTS_DEAD_QUEUE)).messageCount,
        0,
        'only the bad one',
      );
      await queueEmpty();
      for (const line of consumer.lines())
        assert.ok(!/INSERT INTO runs/.test(line), 'no statement in the log');
    } finally {
      await svc.db.db.raw('DROP TRIGGER IF EXISTS refuse_exploding_host');
      if (!(await svc.db.db.schema.hasTable('events')))
        await svc.db.db.raw('RENAME TABLE events_away TO events');
    }
  });

  test('replayed results change nothing on a finished run: not host, heartbeat_at, outcome or events', async () => {
    const jobId = await insertJob(svc.db.db, 'replayed');
    const runId = await insertRun(svc.db.db, jobId);
    const start = new Date(Date.now() - 5000);
    const starting = resultMessage('starting', jobId, runId, {
      start_time: start.toISOString(),
      'x-send-datetime': start.toISOString(),
    });
    const finished = resultMessage('finished', jobId, runId, { start_time: start.toISOString() });
    await pub.publish(starting, finished);
    const done = await runIn(runId, 'succeeded');
    const eventsBefore = await eventsOf(svc.db.db, runId);
    assert.equal(eventsBefore.length, 2);

    const evil = { 'x-host': 'evil.example.com' };
    await pub.publish(
      starting,
      finished,
      resultMessage('starting', jobId, runId, evil),
      resultMessage('heartbeat', jobId, runId, evil),
      resultMessage('failed', jobId, runId, { ...evil, reason: 'forged' }),
      resultMessage('finished', jobId, runId, { ...evil, return_code: 9, status: 'failed' }),
    );
    await drain(jobId);
    const after = (await runRow(svc.db.db, runId))!;
    assert.equal(after.host, 'host-a.example.com', 'host kept');
    assert.equal(after.heartbeat_at!.getTime(), done.heartbeat_at!.getTime(), 'heartbeat_at kept');
    assert.equal(after.status, 'succeeded');
    assert.equal(after.return_code, 0);
    assert.equal(after.reason, done.reason);
    assert.equal(after.started_at!.getTime(), start.getTime());
    assert.deepEqual(await eventsOf(svc.db.db, runId), eventsBefore, 'no event added');
  });

  test('a lost run ignores heartbeats but takes the real outcome that arrives late; a result naming another job changes nothing', async () => {
    const jobId = await insertJob(svc.db.db, 'lost-late');
    const otherJob = await insertJob(svc.db.db, 'other');
    const runId = await insertRun(svc.db.db, jobId);
    await pub.publish(resultMessage('starting', jobId, runId));
    await runIn(runId, 'running');
    await svc.db.db('runs').where({ run_id: runId }).update({
      status: 'lost',
      reason: 'no heartbeat from host-a.example.com for 61 s',
      finished_at: new Date(),
    });
    const lost = (await runRow(svc.db.db, runId))!;
    await pub.publish(
      resultMessage('heartbeat', jobId, runId, { 'x-host': 'evil.example.com' }),
      resultMessage('finished', otherJob, runId, { 'x-host': 'evil.example.com' }),
    );
    await drain(jobId);
    let row = (await runRow(svc.db.db, runId))!;
    assert.equal(row.status, 'lost');
    assert.equal(row.host, 'host-a.example.com');
    assert.equal(row.heartbeat_at!.getTime(), lost.heartbeat_at!.getTime());
    assert.equal((await eventsOf(svc.db.db, runId)).length, 1, 'no event for the other job');

    await pub.publish(
      resultMessage('finished', jobId, runId, {
        'x-host': 'host-b.example.com',
        return_code: 0,
      }),
    );
    row = await runIn(runId, 'succeeded');
    assert.equal(row.host, 'host-b.example.com', 'the correcting result names its host');
    assert.match(row.reason ?? '', /after the run was marked lost/);
    assert.deepEqual(
      (await eventsOf(svc.db.db, runId)).map((e) => e.type),
      ['starting', 'finished'],
    );
  });
});
