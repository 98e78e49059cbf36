import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import pino from 'pino';
import {
  createTestDatabase,
  createTestVhost,
  waitFor,
  type TestDatabase,
  type TestVhost,
} from '../helpers/services';
import { bindQueue, insertJobs, nextWholeSecond, runsOf } from '../helpers/injector';
import { AmqpConnection, ConfirmPublisher } from '../../src/core/amqp';
import { loadConfig } from '../../src/core/config';
import { declareCore } from '../../src/core/topology';
import { Injector, type InjectorEvents } from '../../src/injector';
import { EventMonitor } from '../helpers/event-monitor';

/**
 * The database's clock decides what is due, whatever the process's clock
 * says: an injector whose own clock runs 5 s behind still wakes when a job
 * comes due by the database (it sleeps by the measured offset), and warns
 * once about the skew. In-process, with the real database and broker, so
 * the clock can be skewed.
 */
let tdb: TestDatabase;
let vh: TestVhost;

before(async () => {
  tdb = await createTestDatabase({ poolMax: 6 });
  vh = await createTestVhost();
});

after(async () => {
  await vh?.drop();
  await tdb?.drop();
});

test(
  'a process clock 5 s behind the database: jobs still go out on the database time, and the skew is warned about once',
  { timeout: 60_000 },
  async () => {
    const logger = pino({ level: 'silent' });
    // A long poll interval, so a sleep computed from the process clock would be 5 s late.
    const config = loadConfig({
      DATABASE_URL: tdb.url,
      RABBITMQ_URL: vh.url,
      CRONQ_INJECTOR_MAX_POLL_MS: '10000',
    });
    const connection = new AmqpConnection(config.amqp, { logger, name: 'injector-clock-test' });
    await connection.onConnect(async (conn) => {
      const ch = await conn.createChannel();
      await declareCore(ch);
      await bindQueue(ch, 'cronq_jobs', 'default');
      await ch.close();
    });
    connection.start();
    await connection.connection();
    const publisher = new ConfirmPublisher(connection, logger);
    const injector = new Injector({
      db: tdb.db,
      connection,
      publisher,
      settings: config.injector,
      claimant: 'clock-test',
      logger,
      now: () => Date.now() - 5000,
    });
    const events = new EventMonitor<InjectorEvents>(injector);
    // The job exists before the injector starts, so its first probe sees it and sleeps until it.
    const start = nextWholeSecond(3000);
    const [id] = await insertJobs(tdb.db, [
      { name: 'skewed', schedule: `R3/${start.toISOString()}/PT1S`, nextRun: start },
    ]);
    try {
      await injector.start();
      await events.waitFor('clock:skew', { timeoutMs: 5000 });
      await waitFor(
        async () =>
          (await runsOf(tdb.db)).filter((r) => r.job_id === id && r.published_at).length === 3,
        {
          timeoutMs: 20_000,
          message: 'three runs published',
        },
      );
      for (const r of (await runsOf(tdb.db)).filter((x) => x.job_id === id)) {
        const lag = r.published_at!.getTime() - r.scheduled_for.getTime();
        // Slept by the process clock the run would be 5 s late; normally it is tens of ms
        // late, and the bound below 5 s leaves room for a busy test machine.
        assert.ok(lag < 2500, `published ${lag} ms after its time by the database's clock`);
      }
      assert.equal(events.count('clock:skew'), 1, 'warned once');
      const [warning] = events.all('clock:skew')[0]!;
      assert.ok(Math.abs(warning.offsetMs - 5000) < 500, `offset ${warning.offsetMs} ms`);
      assert.equal(events.count('clock:agreed'), 0);
    } finally {
      await injector.stop();
      await publisher.close();
      await connection.close();
    }
  },
);
