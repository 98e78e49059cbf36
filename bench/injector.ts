/**
 * Injector benchmark (`npm run bench:injector`): prints one JSON document.
 *
 *  ceiling  what this machine's broker and database can do at best with the
 *           same messages and rows: confirmed publishes/s with a pipelined
 *           window of 500, and a bare claim per second (batches of 500:
 *           SELECT ... FOR UPDATE SKIP LOCKED, UPDATE next_run, INSERT the
 *           run rows; also shown without the run rows). The ceiling is the
 *           lower of publish and claim.
 *  burst    10,000 jobs all due at the same instant: time from that instant
 *           until the last run is confirmed, as jobs/s and as a ratio to the
 *           ceiling (the lower of the two ceilings).
 *  lag      1,000 PT1S jobs for 30 s: scheduled_for -> confirmed (published_at),
 *           p50/p99/max. "spread": the jobs' phases spread over the second
 *           (job i starts at +i ms); "aligned": all 1,000 due at the same
 *           instant every second (a burst of 1,000 per second).
 *  idle     queries per second an injector sends with nothing due.
 *
 * Uses its own database and vhost (dropped at the end). Environment:
 * BENCH_LAG_SECONDS (default 30), BENCH_BURST_JOBS (default 10000).
 */
import os from 'node:os';
import type { Knex } from '../src/core/db';
import { AmqpConnection, ConfirmPublisher } from '../src/core/amqp';
import { loadConfig } from '../src/core/config';
import { silentLogger } from '../src/core/logger';
import { declareCore, EXCHANGE } from '../src/core/topology';
import { Injector, jobMessageBody, type PlannedRun } from '../src/injector';
import { createTestDatabase, createTestVhost, waitFor } from '../test/helpers/services';
import { bindQueue, insertJobs } from '../test/helpers/injector';

const BURST_JOBS = Number(process.env.BENCH_BURST_JOBS ?? 10_000);
const LAG_JOBS = 1000;
const LAG_SECONDS = Number(process.env.BENCH_LAG_SECONDS ?? 30);
const IDLE_SECONDS = 10;
const WINDOW = 500;

type Rows<T> = [T[]];

function progress(what: string): void {
  process.stderr.write(`[bench:injector ${new Date().toISOString()}] ${what}\n`);
}

async function dbNow(db: Knex): Promise<number> {
  const [rows] = (await db.raw('SELECT UTC_TIMESTAMP(3) AS now')) as unknown as Rows<{ now: Date }>;
  return rows[0]!.now.getTime();
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))]!;
}

async function publishCeiling(publisher: ConfirmPublisher, runs: PlannedRun[]): Promise<number> {
  const bodies = runs.map((r) => ({ r, body: jobMessageBody(r) }));
  const t0 = performance.now();
  let next = 0;
  // A pipelined window: WINDOW messages unconfirmed at any time.
  async function lane(): Promise<void> {
    while (next < bodies.length) {
      const { r, body } = bodies[next++]!;
      await publisher.publish(EXCHANGE, 'default', body, {
        persistent: true,
        mandatory: true,
        messageId: r.runId,
        contentType: 'application/json',
      });
    }
  }
  await Promise.all(Array.from({ length: WINDOW }, lane));
  return runs.length / ((performance.now() - t0) / 1000);
}

/**
 * The least database work a claim must do for these rows: lock a batch of
 * due jobs (FOR UPDATE SKIP LOCKED), move their next_run, and, with
 * `withRuns`, write their run rows (which the design requires); one
 * READ COMMITTED transaction per batch, nothing else.
 */
async function claimCeiling(db: Knex, n: number, withRuns: boolean): Promise<number> {
  await db.raw('DELETE FROM runs');
  await db.raw('UPDATE jobs SET next_run = UTC_TIMESTAMP(3) - INTERVAL 1 SECOND');
  const t0 = performance.now();
  let claimed = 0;
  let seq = 0;
  for (;;) {
    const got = await db.transaction(
      async (trx) => {
        const [rows] = (await trx.raw(
          'SELECT id, next_run FROM jobs WHERE next_run < UTC_TIMESTAMP(3) ORDER BY next_run LIMIT ? FOR UPDATE SKIP LOCKED',
          [WINDOW],
        )) as unknown as Rows<{ id: number; next_run: Date }>;
        if (rows.length === 0) return 0;
        const ids = rows.map((r) => r.id);
        await trx.raw(
          `UPDATE jobs SET next_run = UTC_TIMESTAMP(3) + INTERVAL 1 HOUR, locked_by = 'bench' WHERE id IN (${ids.map(() => '?').join(',')})`,
          ids,
        );
        if (withRuns) {
          const values = rows.map(
            () =>
              "(?, ?, 'x', ?, 'schedule', 'queued', 'default', 'bench', UTC_TIMESTAMP(3), UTC_TIMESTAMP(3), 0)",
          );
          const bindings = rows.flatMap((r) => [
            `b${(++seq).toString(16).padStart(31, '0')}`,
            r.id,
            r.next_run,
          ]);
          await trx.raw(
            `INSERT INTO runs (run_id, job_id, job_name, scheduled_for, triggered_by, status, routing_key, claimed_by, queued_at, publish_attempt_at, missed) VALUES ${values.join(', ')}`,
            bindings,
          );
        }
        return rows.length;
      },
      { isolationLevel: 'read committed' },
    );
    if (got === 0) break;
    claimed += got;
  }
  if (claimed !== n) throw new Error(`claim ceiling claimed ${claimed} of ${n}`);
  const rate = n / ((performance.now() - t0) / 1000);
  await db.raw('DELETE FROM runs');
  return rate;
}

async function lagRun(
  db: Knex,
  mode: 'spread' | 'aligned',
  seconds: number,
): Promise<Record<string, number>> {
  await db.raw('DELETE FROM jobs');
  await db.raw('DELETE FROM runs');
  const base = Math.ceil((Date.now() + 2000) / 1000) * 1000;
  const specs = Array.from({ length: LAG_JOBS }, (_, i) => {
    const start = new Date(base + (mode === 'spread' ? i : 0));
    return {
      name: `lag-${mode}-${i}`,
      schedule: `R${seconds}/${start.toISOString()}/PT1S`,
      nextRun: start,
    };
  });
  await insertJobs(db, specs, `bench-lag-${mode}`);
  const expected = LAG_JOBS * seconds;
  await waitFor(
    async () =>
      Number(
        (
          (await db('runs').whereNotNull('published_at').count({ n: '*' })) as Array<{ n: number }>
        )[0]!.n,
      ) >= expected,
    {
      timeoutMs: (seconds + 60) * 1000,
      intervalMs: 500,
      message: `${expected} lag runs published`,
    },
  );
  const [rows] = (await db.raw(
    'SELECT TIMESTAMPDIFF(MICROSECOND, scheduled_for, published_at) / 1000 AS lag, missed FROM runs',
  )) as unknown as Rows<{ lag: number; missed: number }>;
  const lags = rows.map((r) => Number(r.lag)).sort((a, b) => a - b);
  return {
    runs: rows.length,
    missed: rows.reduce((s, r) => s + r.missed, 0),
    p50Ms: Math.round(percentile(lags, 0.5) * 10) / 10,
    p99Ms: Math.round(percentile(lags, 0.99) * 10) / 10,
    maxMs: Math.round(lags[lags.length - 1]! * 10) / 10,
  };
}

async function main(): Promise<void> {
  const tdb = await createTestDatabase({ poolMax: 6 });
  const vh = await createTestVhost().catch(async (err: unknown) => {
    await tdb.drop();
    throw err;
  });
  const config = loadConfig({
    DATABASE_URL: tdb.url,
    RABBITMQ_URL: vh.url,
    CRONQ_LOG_LEVEL: 'silent',
    // The injector's own speed, from the due instant: claimed and published
    // ahead (the default lead), a burst would look faster than the work is.
    CRONQ_INJECTOR_LEAD_MS: '0',
  });
  const logger = silentLogger();
  const connection = new AmqpConnection(config.amqp, { logger, name: 'bench-injector' });
  await connection.onConnect(async (conn) => {
    const ch = await conn.createChannel();
    await declareCore(ch);
    await bindQueue(ch, 'cronq_jobs', 'default');
    await ch.close();
  });
  connection.start();
  await connection.connection();
  const publisher = new ConfirmPublisher(connection, logger);
  const purge = async () => {
    const conn = await connection.connection();
    const ch = await conn.createChannel();
    await ch.purgeQueue('cronq_jobs');
    await ch.close();
  };
  const out: Record<string, unknown> = {
    machine: {
      cpus: os.cpus().length,
      cpuModel: os.cpus()[0]?.model,
      loadavg1m: os.loadavg()[0],
      node: process.version,
    },
    settings: config.injector,
  };

  try {
    progress('ceiling');
    // ---- ceiling ----------------------------------------------------------
    const future = new Date(Date.now() + 3600_000);
    const ids = await insertJobs(
      tdb.db,
      Array.from({ length: BURST_JOBS }, (_, i) => ({
        name: `burst-${i}`,
        schedule: `R/${future.toISOString()}/PT1H`,
        nextRun: future,
      })),
      'bench-burst',
    );
    const sample: PlannedRun[] = ids.map((id, i) => ({
      runId: i.toString(16).padStart(32, '0'),
      jobId: id,
      jobName: `burst-${i}`,
      command: `echo burst-${i}`,
      routingKey: 'default',
      timeoutSeconds: null,
      scheduledFor: future,
      trigger: 'schedule',
      missed: 0,
    }));
    await publishCeiling(publisher, sample.slice(0, 1000)); // warm-up
    await purge();
    const publishPerSec = await publishCeiling(publisher, sample);
    await purge();
    const claimPerSec = await claimCeiling(tdb.db, BURST_JOBS, true);
    const claimWithoutRunsPerSec = await claimCeiling(tdb.db, BURST_JOBS, false);
    const ceiling = Math.min(publishPerSec, claimPerSec);
    out.ceiling = {
      publishPerSec: Math.round(publishPerSec),
      claimPerSec: Math.round(claimPerSec),
      claimWithoutRunRowsPerSec: Math.round(claimWithoutRunsPerSec),
      ceilingPerSec: Math.round(ceiling),
    };

    // ---- injector, counting its queries -----------------------------------
    let queries = 0;
    tdb.db.on('query', () => {
      queries += 1;
    });
    const injector = new Injector({
      db: tdb.db,
      connection,
      publisher,
      settings: config.injector,
      claimant: `bench.${process.pid}`,
      logger,
    });

    progress('idle');
    // ---- idle -------------------------------------------------------------
    await tdb.db.raw('UPDATE jobs SET next_run = UTC_TIMESTAMP(3) + INTERVAL 1 DAY');
    await injector.start();
    await new Promise((r) => setTimeout(r, 1500));
    const q0 = queries;
    const tIdle = performance.now();
    await new Promise((r) => setTimeout(r, IDLE_SECONDS * 1000));
    out.idle = {
      seconds: IDLE_SECONDS,
      queriesPerSec:
        Math.round(((queries - q0) / ((performance.now() - tIdle) / 1000)) * 100) / 100,
    };

    progress('burst');
    // ---- burst ------------------------------------------------------------
    const qBurst = queries;
    const dueAt = (await dbNow(tdb.db)) + 1500;
    await tdb.db.raw('UPDATE jobs SET next_run = ?', [new Date(dueAt)]);
    await waitFor(
      async () =>
        Number(
          (
            (await tdb.db('runs').whereNotNull('published_at').count({ n: '*' })) as Array<{
              n: number;
            }>
          )[0]!.n,
        ) >= BURST_JOBS,
      {
        timeoutMs: 120_000,
        intervalMs: 200,
        message: 'burst published',
      },
    );
    const [[last]] = (await tdb.db.raw(
      'SELECT MAX(published_at) AS last, MIN(queued_at) AS first FROM runs',
    )) as unknown as Rows<{ last: Date; first: Date }>;
    const seconds = (last!.last.getTime() - dueAt) / 1000;
    const jobsPerSec = BURST_JOBS / seconds;
    out.burst = {
      jobs: BURST_JOBS,
      seconds: Math.round(seconds * 1000) / 1000,
      firstClaimAfterMs: last!.first.getTime() - dueAt,
      jobsPerSec: Math.round(jobsPerSec),
      ratioToCeiling: Math.round((jobsPerSec / ceiling) * 100) / 100,
      ratioToPublishCeiling: Math.round((jobsPerSec / publishPerSec) * 100) / 100,
      queriesPerJob: Math.round(((queries - qBurst) / BURST_JOBS) * 1000) / 1000,
    };
    await purge();

    progress('lag');
    // ---- lag --------------------------------------------------------------
    const spread = await lagRun(tdb.db, 'spread', LAG_SECONDS);
    await purge();
    const aligned = await lagRun(tdb.db, 'aligned', LAG_SECONDS);
    await purge();
    out.lag = { jobs: LAG_JOBS, seconds: LAG_SECONDS, spread, aligned };

    await injector.stop();
  } finally {
    await publisher.close();
    await connection.close();
    await vh.drop();
    await tdb.drop();
  }
  process.stdout.write(`${JSON.stringify(out, null, 2)}\n`);
}

main().catch((err: unknown) => {
  process.stderr.write(`bench:injector failed: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
