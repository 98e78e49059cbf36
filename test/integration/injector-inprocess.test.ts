import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import type { ChannelModel } from 'amqplib';
import pino from 'pino';
import {
  createTestDatabase,
  createTestVhost,
  uniqueName,
  waitFor,
  type TestDatabase,
  type TestVhost,
} from '../helpers/services';
import { bindQueue, drainQueue, insertJobs, runsOf } from '../helpers/injector';
import { EventMonitor } from '../helpers/event-monitor';
import { AmqpConnection, ConfirmPublisher } from '../../src/core/amqp';
import { sleep } from '../../src/core/async';
import { loadConfig, parseDatabaseUrl } from '../../src/core/config';
import { createDb } from '../../src/core/db';
import { declareCore } from '../../src/core/topology';
import {
  claimDueJobs,
  Dispatcher,
  Injector,
  type DispatcherEvents,
  type InjectorEvents,
} from '../../src/injector';

/**
 * The injector's rules, asserted through its typed events (events.ts) and
 * the rows and queues a user sees, with the Injector and its Dispatcher
 * constructed in this process against a real database and vhost. Time is
 * real here: node:test's mock timers would also stop the database driver's
 * and the AMQP client's own timers.
 */
let tdb: TestDatabase;
let vh: TestVhost;
let conn: ChannelModel;
let connection: AmqpConnection;
let publisher: ConfirmPublisher;
const logger = pino({ level: 'silent' });

before(async () => {
  tdb = await createTestDatabase({ poolMax: 6 });
  vh = await createTestVhost();
  conn = await vh.connect();
  const config = loadConfig({ DATABASE_URL: tdb.url, RABBITMQ_URL: vh.url });
  connection = new AmqpConnection(config.amqp, { logger, name: 'injector-inprocess-test' });
  await connection.onConnect(async (c) => {
    const ch = await c.createChannel();
    await declareCore(ch);
    await ch.close();
  });
  connection.start();
  await connection.connection();
  publisher = new ConfirmPublisher(connection, logger);
});

after(async () => {
  await publisher?.close();
  await connection?.close();
  await conn?.close();
  await vh?.drop();
  await tdb?.drop();
});

/** A queue of the test's own, bound to a routing key of the same name. */
async function ownQueue(): Promise<string> {
  const queue = uniqueName('q');
  const ch = await conn.createChannel();
  await bindQueue(ch, queue, queue);
  await ch.close();
  return queue;
}

function newInjector(env: Record<string, string> = {}): {
  injector: Injector;
  events: EventMonitor<InjectorEvents>;
} {
  const config = loadConfig({ DATABASE_URL: tdb.url, RABBITMQ_URL: vh.url, ...env });
  const injector = new Injector({
    db: tdb.db,
    connection,
    publisher,
    settings: config.injector,
    claimant: uniqueName('inprocess'),
    logger,
  });
  return { injector, events: new EventMonitor(injector) };
}

test(
  'a job whose schedule cannot be read gets schedule_error and one schedule:error event, and the other jobs are still published',
  { timeout: 60_000 },
  async () => {
    const queue = await ownQueue();
    const start = new Date(Date.now() - 1000);
    const [badId, ...goodIds] = await insertJobs(
      tdb.db,
      [
        { name: uniqueName('bad'), schedule: 'every now and then', nextRun: start },
        ...[1, 2, 3].map(() => ({
          name: uniqueName('good'),
          schedule: `R/${start.toISOString()}/PT1H`,
          nextRun: start,
        })),
      ].map((j) => ({ ...j, routingKey: queue })),
    );
    const { injector, events } = newInjector();
    try {
      await injector.start();
      const [error] = await events.waitFor('schedule:error', { timeoutMs: 15_000 });
      assert.equal(error.jobId, badId);
      assert.match(error.error, /every now and then/);
      await waitFor(
        async () =>
          (await runsOf(tdb.db)).filter((r) => goodIds.includes(r.job_id) && r.published_at)
            .length === goodIds.length,
        { timeoutMs: 15_000, message: 'the good jobs published' },
      );
      // A few more cycles: the set-aside job is not claimed (nor reported) again.
      const cycles = events.count('cycle:done');
      await events.waitFor('cycle:done', { n: cycles + 3, timeoutMs: 15_000 });
      assert.equal(events.count('schedule:error'), 1);
      const claimed = events.all('cycle:done').reduce((n, [e]) => n + e.claimed, 0);
      assert.ok(claimed >= goodIds.length, `claimed ${claimed}`);
      const published = events.all('cycle:done').reduce((n, [e]) => n + e.published, 0);
      assert.equal(published, goodIds.length, 'cycle:done counts each published run once');
    } finally {
      await injector.stop();
    }
    const [bad] = await tdb.db('jobs').where({ id: badId }).select('schedule_error');
    assert.match(bad.schedule_error, /every now and then/);
    assert.equal((await runsOf(tdb.db)).filter((r) => r.job_id === badId).length, 0);
    const msgs = await drainQueue(conn, queue);
    assert.deepEqual(msgs.map((m) => m.job_id).sort(), [...goodIds].sort());
    assert.equal(events.count('stopped'), 1);
  },
);

test(
  'the dispatcher holds a claim back while maxInFlightBatches batches await their confirms, and records every batch once the broker answers',
  { timeout: 60_000 },
  async () => {
    const queue = await ownQueue();
    const start = new Date(Date.now() - 1000);
    const ids = await insertJobs(
      tdb.db,
      Array.from({ length: 6 }, () => ({
        name: uniqueName('inflight'),
        schedule: `R/${start.toISOString()}/PT1H`,
        nextRun: start,
        routingKey: queue,
      })),
      'inflight',
    );
    const claim = () =>
      claimDueJobs(tdb.db, { batchSize: 2, includeRunNow: false, claimant: 'inflight', leadMs: 0 });
    const batches = [(await claim()).runs, (await claim()).runs, (await claim()).runs];
    assert.deepEqual(
      batches.map((b) => b.length),
      [2, 2, 2],
    );
    // The broker is slow: no publish goes out until the gate opens.
    let open!: () => void;
    const gate = new Promise<void>((resolve) => (open = resolve));
    const slow = {
      publish: async (...args: Parameters<ConfirmPublisher['publish']>) => {
        await gate;
        return publisher.publish(...args);
      },
    } as unknown as ConfirmPublisher;
    const dispatcher = new Dispatcher({
      db: tdb.db,
      publisher: slow,
      logger,
      confirmTimeoutMs: 20_000,
      maxInFlightBatches: 2,
      brokerReady: () => connection.isConnected,
    });
    const events = new EventMonitor<DispatcherEvents>(dispatcher);
    await dispatcher.submit(batches[0]!);
    await dispatcher.submit(batches[1]!);
    let thirdTaken = false;
    const third = dispatcher.submit(batches[2]!).then(() => (thirdTaken = true));
    // Nothing can free a slot before the gate opens, so a short look suffices.
    await sleep(200);
    assert.equal(events.count('batch:committed'), 2, 'two batches in flight');
    assert.equal(thirdTaken, false, 'the third waits for room');
    open();
    await third;
    await dispatcher.idle();
    assert.equal(events.count('batch:committed'), 3);
    const confirmed = events.all('batch:confirmed').flatMap(([e]) => e.confirmed);
    assert.equal(confirmed.length, 6);
    const runs = (await runsOf(tdb.db)).filter((r) => ids.includes(r.job_id));
    assert.equal(runs.length, 6);
    assert.ok(
      runs.every((r) => r.published_at !== null),
      'published_at written for each',
    );
    assert.equal((await drainQueue(conn, queue)).length, 6);
  },
);

test(
  'database connections cut under the injector: one outage event, then recovered, and it goes on',
  { timeout: 60_000 },
  async () => {
    const { injector, events } = newInjector({ CRONQ_INJECTOR_MAX_POLL_MS: '100' });
    const admin = createDb(parseDatabaseUrl(tdb.url), { poolMax: 1 });
    try {
      await injector.start();
      await events.waitFor('cycle:done', { timeoutMs: 15_000 });
      // Kill this database's connections until the injector notices (its probe runs every 100 ms).
      const until = Date.now() + 20_000;
      while (events.count('outage') === 0 && Date.now() < until) {
        const [rows] = (await admin.raw(
          'SELECT ID AS id FROM information_schema.PROCESSLIST WHERE DB = ? AND ID <> CONNECTION_ID()',
          [tdb.name],
        )) as unknown as [Array<{ id: number }>];
        for (const r of rows) await admin.raw(`KILL CONNECTION ${Number(r.id)}`).catch(() => {});
        await sleep(20);
      }
      const [outage] = await events.waitFor('outage', { timeoutMs: 1000 });
      assert.equal(outage.kind, 'database');
      const [recovered] = await events.waitFor('recovered', { timeoutMs: 30_000 });
      assert.equal(recovered.after, 'database');
      const cycles = events.count('cycle:done');
      await events.waitFor('cycle:done', { n: cycles + 2, timeoutMs: 10_000 });
      assert.equal(injector.status().outage, null);
    } finally {
      await admin.destroy();
      await injector.stop();
    }
  },
);
