/**
 * What notifications cost (`npm run bench:notify`, prints JSON).
 *
 * Every job fails, and every failure is a first failure (one run per job),
 * so with notifications on, every result that ends a run writes one: the
 * worst case of the no-storm rules. A webhook receiver is started here and
 * answers 200. In the same run, side by side, repeated with the order
 * rotated:
 *
 *   results: the real ResultsService in-process (with the real
 *     NotifySender beside it when on), BENCH_NOTIFY_RUNS runs (default
 *     20,000; fewer are stored in under a second, too short to compare)
 *     over as many jobs, their starting + finished messages pre-loaded;
 *     results per second until every one is stored.
 *   burst: bench/e2e's CronqSystem (bin/cronq-injector, two runners,
 *     bin/cronq-results), BENCH_NOTIFY_BURST_JOBS jobs (default 1,000)
 *     running `false` at the same instant; runs per second until all are
 *     stored. On: every category notifies a webhook on failed.
 *
 * BENCH_NOTIFY_REPS (default 5). The target (issue 18): on within 10 % of off.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { AmqpConnection, ConfirmPublisher } from '../src/core/amqp';
import { loadConfig } from '../src/core/config';
import { createDb } from '../src/core/db';
import { silentLogger } from '../src/core/logger';
import { declareCore, EXCHANGE, RESULTS_ROUTING_KEY } from '../src/core/topology';
import { ResultsService } from '../src/results';
import { NotifySender } from '../src/results/notify';
import { createTestDatabase, createTestVhost } from '../test/helpers/services';
import { CronqSystem } from './e2e/cronq';
import { holdSharedLock } from './lib/lock';

const REPS = Number(process.env.BENCH_NOTIFY_REPS ?? 5);
const RUNS = Number(process.env.BENCH_NOTIFY_RUNS ?? 20000);
const BURST_JOBS = Number(process.env.BENCH_NOTIFY_BURST_JOBS ?? 1000);
/** 0: notifications are written but not sent (to tell the write's cost from the sender's). */
const SEND = process.env.BENCH_NOTIFY_SEND !== '0';

let received = 0;
async function startReceiver(): Promise<{ url: string; close(): Promise<void> }> {
  const server = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      received += 1;
      res.writeHead(200).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/hook`,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

function hex32(i: number): string {
  return (i.toString(16).padStart(8, '0') + 'c'.repeat(24)).slice(0, 32);
}

/** Results per second of one consumer over RUNS failing runs of RUNS jobs. */
async function resultsRun(
  notify: string | null,
): Promise<{ resultsPerSecond: number; notifications: number; allSentSeconds: number | null }> {
  const [tdb, vhost] = await Promise.all([createTestDatabase({ poolMax: 4 }), createTestVhost()]);
  try {
    const [cat] = await tdb.db('categories').insert({ name: 'bench', notify });
    const jobs = Array.from({ length: RUNS }, (_, i) => ({
      name: `job ${i}`,
      command: 'false',
      schedule: 'R/2024-01-01T00:00:00Z/PT1M',
      category_id: cat,
    }));
    for (let i = 0; i < jobs.length; i += 1000)
      await tdb.db('jobs').insert(jobs.slice(i, i + 1000));
    const ids = ((await tdb.db('jobs').select('id').orderBy('id')) as Array<{ id: number }>).map(
      (r) => Number(r.id),
    );
    const base = Date.now() - 3_600_000;
    const runs = ids.map((jobId, i) => ({ runId: hex32(i), jobId, at: new Date(base + i * 10) }));
    for (let i = 0; i < runs.length; i += 1000)
      await tdb.db('runs').insert(
        runs.slice(i, i + 1000).map((r) => ({
          run_id: r.runId,
          job_id: r.jobId,
          job_name: `job ${r.jobId}`,
          scheduled_for: r.at,
          status: 'queued',
          queued_at: r.at,
          published_at: r.at,
        })),
      );
    const conn = await vhost.connect();
    const ch = await conn.createConfirmChannel();
    await declareCore(ch);
    let n = 0;
    for (let i = 0; i < runs.length; i += 16) {
      const wave = runs.slice(i, i + 16);
      const common = (r: (typeof runs)[0]) => ({
        job_id: r.jobId,
        run_id: r.runId,
        start_time: r.at.toISOString(),
        'x-host': 'bench.example.com',
      });
      const msgs = [
        ...wave.map((r) => ({
          ...common(r),
          type: 'starting',
          'x-send-datetime': r.at.toISOString(),
        })),
        ...wave.map((r) => ({
          ...common(r),
          type: 'finished',
          'x-send-datetime': new Date(r.at.getTime() + 500).toISOString(),
          return_code: 1,
          run_time: 0.5,
          status: 'failed',
          output: 'it failed\n',
        })),
      ];
      for (const m of msgs) {
        ch.publish(EXCHANGE, RESULTS_ROUTING_KEY, Buffer.from(JSON.stringify(m)), {
          persistent: true,
        });
        n += 1;
      }
      if (i % 2000 === 0) await ch.waitForConfirms();
    }
    await ch.waitForConfirms();
    await ch.close();

    const config = loadConfig({ DATABASE_URL: tdb.url, RABBITMQ_URL: vhost.url });
    const logger = silentLogger();
    const db = createDb(config.database, { poolMax: 4, isolationLevel: 'READ COMMITTED' });
    const connection = new AmqpConnection(config.amqp, { logger, name: 'bench-notify' });
    const publisher = new ConfirmPublisher(connection, logger);
    const service = new ResultsService({
      db,
      connection,
      publisher,
      config: config.results,
      logger,
    });
    const sender = new NotifySender({
      db,
      config: { ...config.notify, pollMs: 200 },
      logger,
      busy: () => service.busy,
    });
    await service.start();
    if (notify && SEND) await sender.start();
    while (!service.status().consuming) await new Promise((r) => setTimeout(r, 1));
    const t0 = process.hrtime.bigint();
    while (service.status().stored < n) await new Promise((r) => setTimeout(r, 5));
    const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
    // How long until every notification was sent too (not part of the results figure).
    let sentSeconds: number | null = null;
    if (notify && SEND) {
      for (;;) {
        // Written to the outbox first, then moved into notifications: both must be done.
        const [[p]] = (await tdb.db.raw(
          `SELECT (SELECT COUNT(*) FROM notifications WHERE state <> 'sent')
                + (SELECT COUNT(*) FROM notification_outbox) AS n`,
        )) as [[{ n: number }]];
        if (Number(p.n) === 0) break;
        if (Number(process.hrtime.bigint() - t0) / 1e9 > 300) break;
        await new Promise((r) => setTimeout(r, 100));
      }
      sentSeconds = Number(process.hrtime.bigint() - t0) / 1e9;
    }
    await service.stop();
    await sender.stop();
    await publisher.close();
    await connection.close();
    await db.destroy();
    // Moved or still in the outbox (BENCH_NOTIFY_SEND=0 leaves them there).
    const [[row]] = (await tdb.db.raw(
      `SELECT (SELECT COUNT(*) FROM notifications)
            + (SELECT COALESCE(SUM(JSON_LENGTH(items)), 0) FROM notification_outbox) AS n`,
    )) as [[{ n: number }]];
    return {
      resultsPerSecond: Math.round(n / seconds),
      notifications: Number(row.n),
      allSentSeconds: sentSeconds === null ? null : Number(sentSeconds.toFixed(2)),
    };
  } finally {
    await vhost.drop();
    await tdb.drop();
  }
}

async function burstRun(
  notify: string | null,
): Promise<{ runsPerSecond: number; completionMs: number }> {
  const sys = new CronqSystem(null, {
    name: notify ? 'cronq_failing_notify' : 'cronq_failing',
    command: 'false',
    notify,
  });
  try {
    await sys.setup();
    const b = await sys.burst(BURST_JOBS);
    return { runsPerSecond: Math.round(b.runsPerSecond), completionMs: b.completionMs };
  } finally {
    await sys.teardown();
  }
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function main(): Promise<void> {
  const release = await holdSharedLock();
  const receiver = await startReceiver();
  const notify = JSON.stringify([{ on: ['failed'], webhook: receiver.url }]);
  const figures = {
    results: { off: [] as number[], on: [] as number[] },
    burst: { off: [] as number[], on: [] as number[] },
  };
  let notifications = 0;
  const allSent: number[] = [];
  try {
    for (let rep = 0; rep < REPS; rep += 1) {
      const order = rep % 2 === 0 ? (['off', 'on'] as const) : (['on', 'off'] as const);
      for (const v of order) {
        const r = await resultsRun(v === 'on' ? notify : null);
        figures.results[v].push(r.resultsPerSecond);
        if (v === 'on') {
          notifications = r.notifications;
          if (r.allSentSeconds !== null) allSent.push(r.allSentSeconds);
        }
        const b =
          BURST_JOBS > 0 ? await burstRun(v === 'on' ? notify : null) : { runsPerSecond: 0 };
        figures.burst[v].push(b.runsPerSecond);
        console.error(
          `rep ${rep + 1} ${v}: results ${r.resultsPerSecond}/s, burst ${b.runsPerSecond} runs/s`,
        );
      }
    }
  } finally {
    await receiver.close();
    await release();
  }
  const ratio = (k: 'results' | 'burst') =>
    Number((median(figures[k].on) / median(figures[k].off)).toFixed(3));
  process.stdout.write(
    JSON.stringify(
      {
        benchmark: 'notify',
        reps: REPS,
        results: {
          runs: RUNS,
          jobs: RUNS,
          notificationsWrittenPerRun: notifications,
          off: figures.results.off,
          on: figures.results.on,
          medianRatioOnToOff: ratio('results'),
          allNotificationsSentAfterSeconds: allSent,
        },
        burst: {
          jobs: BURST_JOBS,
          off: figures.burst.off,
          on: figures.burst.on,
          medianRatioOnToOff: ratio('burst'),
        },
        webhookPostsReceived: received,
        target: 'on within 10 % of off (ratio >= 0.9)',
      },
      null,
      2,
    ) + '\n',
  );
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
