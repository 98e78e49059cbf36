/**
 * The results consumer's rules, in process: a `ResultsService` built here
 * against this file's own database and vhost (each test its own service),
 * real result messages published to it, and its typed events
 * (src/results/events.ts) watched with EventMonitor instead of log lines.
 * What a user relies on (rows, queue counts) is checked beside them.
 */
import { afterEach, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { AmqpConnection, ConfirmPublisher } from '../../src/core/amqp';
import { exponentialBackoff } from '../../src/core/async';
import { parseAmqpUrl, type Config } from '../../src/core/config';
import type { Knex } from '../../src/core/db';
import { silentLogger } from '../../src/core/logger';
import { createMessageSigner, type MessageSigner } from '../../src/core/signing';
import {
  EXCHANGE,
  RESULTS_DEAD_QUEUE,
  RESULTS_QUEUE,
  RESULTS_ROUTING_KEY,
} from '../../src/core/topology';
import { ResultsService, type ResultsEvents } from '../../src/results';
import { EventMonitor } from '../helpers/event-monitor';
import {
  createTestDatabase,
  queueCounts,
  useServices,
  waitFor,
  type TestDatabase,
} from '../helpers/services';
import {
  eventsOf,
  insertJob,
  insertRun,
  newRunId,
  resultMessage,
  ResultPublisher,
  runRow,
} from '../helpers/results';

const svc = useServices();
let pub: ResultPublisher;

interface Running {
  service: ResultsService;
  events: EventMonitor<ResultsEvents>;
  stop(): Promise<void>;
}
const running: Running[] = [];

/** A ResultsService of its own (stopped after the test), consuming before this returns. */
async function startService(
  opts: {
    db?: Knex;
    config?: Partial<Config['results']>;
    batchSize?: number;
    signer?: MessageSigner;
  } = {},
): Promise<Running> {
  const logger = silentLogger();
  const connection = new AmqpConnection(parseAmqpUrl(svc.vhost.url), {
    logger,
    name: 'results-inprocess',
  });
  const publisher = new ConfirmPublisher(connection, logger);
  const service = new ResultsService({
    db: opts.db ?? svc.db.db,
    connection,
    publisher,
    config: { prefetch: 100, flushMs: 50, lostAfterMs: 60_000, ...opts.config },
    logger,
    batchSize: opts.batchSize,
    // Short, so a failing write is retried several times within a test.
    backoff: exponentialBackoff(50, 200),
    signer: opts.signer,
  });
  const events = new EventMonitor<ResultsEvents>(service);
  let stopped: Promise<void> | undefined;
  const r: Running = {
    service,
    events,
    stop: () =>
      (stopped ??= (async () => {
        await service.stop();
        await publisher.close();
        await connection.close();
      })()),
  };
  running.push(r);
  await service.start();
  await events.waitFor('consuming', { timeoutMs: 30_000 });
  return r;
}

async function deadCount(): Promise<number> {
  return (await pub.channel.checkQueue(RESULTS_DEAD_QUEUE)).messageCount;
}

describe('ResultsService in process', () => {
  before(async () => {
    pub = await ResultPublisher.open(await svc.vhost.connect());
  });

  afterEach(async () => {
    await Promise.all(running.splice(0).map((r) => r.stop()));
  });

  test('group commit: messages that arrive together are written as one batch, acked after it', async () => {
    const { events } = await startService({ batchSize: 50, config: { flushMs: 500 } });
    const jobId = await insertJob(svc.db.db, 'group');
    const runIds = Array.from({ length: 20 }, () => newRunId());
    await pub.publish(...runIds.map((r) => resultMessage('finished', jobId, r)));
    // flushMs (500 ms) is far longer than the broker needs to hand over 20 messages.
    const [batch] = await events.waitFor('batch:stored');
    assert.deepEqual(countsOf(batch), { count: 20, stored: 20, acked: true });
    for (const r of runIds) assert.equal((await runRow(svc.db.db, r))?.status, 'succeeded');
    assert.deepEqual(await queueCounts(svc.vhost.vhost, RESULTS_QUEUE), {
      messages: 0,
      unacked: 0,
    });
    assert.equal(events.count('batch:stored'), 1, 'one batch');
  });

  test('group commit: full batches are written at once, the rest flushMs later', async () => {
    const flushMs = 3000;
    const { events } = await startService({ batchSize: 10, config: { flushMs } });
    const jobId = await insertJob(svc.db.db, 'full');
    const t0 = Date.now();
    await pub.publish(
      ...Array.from({ length: 25 }, () => resultMessage('finished', jobId, newRunId())),
    );
    await events.waitFor('batch:stored', { n: 2 });
    const fullAfter = Date.now() - t0;
    // Bound: well under flushMs, whatever the load of this shared machine.
    assert.ok(fullAfter < flushMs - 500, `two full batches after ${fullAfter} ms`);
    const [last] = await events.waitFor('batch:stored', { n: 3, timeoutMs: flushMs + 10_000 });
    const restAfter = Date.now() - t0;
    assert.ok(restAfter >= flushMs - 50, `the rest not before flushMs (${restAfter} ms)`);
    assert.deepEqual(
      events.all('batch:stored').map(([b]) => b.count),
      [10, 10, 5],
    );
    assert.equal(last.count, 5);
  });

  test('a poison message among good ones is dead-lettered alone; the rest are stored', async () => {
    const { events } = await startService({ batchSize: 50, config: { flushMs: 300 } });
    const jobId = await insertJob(svc.db.db, 'poison');
    // A refusal by the server that is not a data error: split after three tries.
    await svc.db.db.raw(`CREATE TRIGGER refuse_poison BEFORE INSERT ON runs FOR EACH ROW
      BEGIN
        IF NEW.host = 'poison.example.com' THEN
          SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'refused by the poison trigger';
        END IF;
      END`);
    try {
      const good = Array.from({ length: 6 }, () => newRunId());
      const bad = newRunId();
      const deadBefore = await deadCount();
      await pub.publish(
        ...good.slice(0, 3).map((r) => resultMessage('finished', jobId, r)),
        resultMessage('finished', jobId, bad, { 'x-host': 'poison.example.com' }),
        ...good.slice(3).map((r) => resultMessage('finished', jobId, r)),
      );
      const [dead] = await events.waitFor('dead-lettered', { timeoutMs: 20_000 });
      assert.match(dead.reason, /refused by the poison trigger/);
      assert.equal(dead.refused, false);
      const [batch] = await events.waitFor('batch:stored');
      assert.deepEqual(countsOf(batch), { count: 7, stored: 6, acked: true });
      assert.equal(events.count('batch:failed'), 0, 'the database took writes: never handed back');
      for (const r of good) assert.equal((await runRow(svc.db.db, r))?.status, 'succeeded');
      assert.equal(await runRow(svc.db.db, bad), undefined);
      assert.equal(await deadCount(), deadBefore + 1, 'only the poison message');
    } finally {
      await svc.db.db.raw('DROP TRIGGER IF EXISTS refuse_poison');
    }
  });

  test('nothing is acked while the database refuses writes; everything is stored once it takes them', async () => {
    // Its own database, whose events table is renamed away: every write fails while the server answers.
    const own: TestDatabase = await createTestDatabase({ poolMax: 2 });
    try {
      const jobId = await insertJob(own.db, 'outage');
      await own.db.raw('RENAME TABLE events TO events_away');
      const { events, service } = await startService({ db: own.db, config: { flushMs: 20 } });
      const runIds = Array.from({ length: 5 }, () => newRunId());
      const deadBefore = await deadCount();
      await pub.publish(...runIds.map((r) => resultMessage('finished', jobId, r)));
      await events.waitFor('batch:failed', { n: 3, timeoutMs: 20_000 });
      assert.equal(service.status().retrying, true);
      assert.equal(events.count('batch:stored'), 0);
      assert.equal(events.count('dead-lettered'), 0, 'an outage dead-letters nothing');
      assert.equal(
        (await queueCounts(svc.vhost.vhost, RESULTS_QUEUE)).messages,
        5,
        'all five still on the queue (ready or in hand), none acked',
      );
      await own.db.raw('RENAME TABLE events_away TO events');
      await events.waitFor('batch:recovered', { timeoutMs: 20_000 });
      await waitFor(
        async () => (await queueCounts(svc.vhost.vhost, RESULTS_QUEUE)).messages === 0,
        { message: 'the results queue is empty' },
      );
      for (const r of runIds) {
        assert.equal((await runRow(own.db, r))?.status, 'succeeded');
        assert.equal((await eventsOf(own.db, r)).length, 1, 'stored once');
      }
      assert.equal(service.status().retrying, false);
      assert.equal(await deadCount(), deadBefore);
    } finally {
      await Promise.all(running.splice(0).map((r) => r.stop()));
      await own.drop();
    }
  });

  test('stop writes and acks what is in hand, whatever the timer says', async () => {
    const { events, service, stop } = await startService({
      batchSize: 100,
      config: { flushMs: 60_000 },
    });
    const jobId = await insertJob(svc.db.db, 'stop');
    const runIds = Array.from({ length: 10 }, () => newRunId());
    await pub.publish(...runIds.map((r) => resultMessage('finished', jobId, r)));
    await waitFor(() => service.status().pending === 10, { message: '10 results in hand' });
    assert.equal(events.count('batch:stored'), 0, 'the flush timer has not fired');
    await stop();
    assert.deepEqual(
      events.all('batch:stored').map(([{ count, stored, acked }]) => ({ count, stored, acked })),
      [{ count: 10, stored: 10, acked: true }],
    );
    const [counts] = await events.waitFor('stopped');
    assert.equal(counts.stored, 10);
    for (const r of runIds) assert.equal((await runRow(svc.db.db, r))?.status, 'succeeded');
    assert.equal((await queueCounts(svc.vhost.vhost, RESULTS_QUEUE)).messages, 0);
  });

  test('the lost sweeper marks a silent run lost, and a queued one not', async () => {
    const { events } = await startService({ config: { lostAfterMs: 1000 } });
    const jobId = await insertJob(svc.db.db, 'silent');
    const queued = await insertRun(svc.db.db, jobId, {
      scheduledFor: new Date(Date.now() - 3_600_000),
    });
    const runId = await insertRun(svc.db.db, jobId);
    await pub.publish(resultMessage('starting', jobId, runId));
    await events.waitFor('batch:stored');
    const [lost] = await events.waitFor('lost:marked', {
      where: (m) => m.runs.some((r) => r.run_id === runId),
      timeoutMs: 20_000,
    });
    assert.equal(lost.count, lost.runs.length);
    const row = await runRow(svc.db.db, runId);
    assert.equal(row?.status, 'lost');
    assert.match(row?.reason ?? '', /^no heartbeat from host-a\.example\.com for \d+ s$/);
    assert.equal((await runRow(svc.db.db, queued))?.status, 'queued');
  });

  test('with a message key, an unsigned result is refused and dead-lettered; a signed one is stored', async () => {
    const key = 'k'.repeat(24) + '-inprocess-key';
    const signer = createMessageSigner([key])!;
    const { events } = await startService({ signer });
    const jobId = await insertJob(svc.db.db, 'signed');
    const forged = newRunId();
    const signed = newRunId();
    const deadBefore = await deadCount();
    await pub.publish(resultMessage('finished', jobId, forged));
    const body = Buffer.from(JSON.stringify(resultMessage('finished', jobId, signed)));
    pub.channel.publish(EXCHANGE, RESULTS_ROUTING_KEY, body, {
      persistent: true,
      headers: signer.sign('result', signed, body),
    });
    await pub.channel.waitForConfirms();
    const [refused] = await events.waitFor('refused');
    assert.equal(refused.reason, 'refused: unsigned');
    await events.waitFor('dead-lettered', { where: (d) => d.refused });
    await waitFor(async () => (await runRow(svc.db.db, signed))?.status === 'succeeded', {
      message: 'the signed result is stored',
    });
    assert.equal(await runRow(svc.db.db, forged), undefined);
    assert.equal(await deadCount(), deadBefore + 1);
  });
});

/** What a batch:stored event says about its messages (its timings vary). */
function countsOf(b: { count: number; stored: number; acked: boolean }) {
  return { count: b.count, stored: b.stored, acked: b.acked };
}
