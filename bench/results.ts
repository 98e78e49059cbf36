/**
 * Results consumer throughput (`npm run bench:results`, prints JSON).
 *
 * 25,000 runs recorded as `queued` (as the injector leaves them), 50,000
 * result messages (starting + finished of each run) pre-loaded on the
 * queue; then the real ResultsService (real broker, real database) is
 * started and timed until every result is stored. The ceiling is a bare
 * multi-row INSERT of the same rows (50,000 events, 25,000 runs) into empty
 * copies of the tables, 1,000 messages' rows per transaction, in the same
 * run on the same server (see ceiling()).
 *
 * Message order (--order): `waves` (default) is what runners produce: 16
 * runs at a time, so the 16 startings come, then the 16 finisheds, then the
 * next 16 runs. `separate` is the worst case: all 25,000 startings, then all
 * 25,000 finisheds, so no batch ever holds both messages of a run and every
 * run row is updated twice.
 *
 * Flags: --runs N (default 25000), --jobs N (100), --prefetch N (messages
 * per batch, CRONQ_RESULTS_PREFETCH; default 500), --batch N (overrides it), --order waves|separate.
 */
import { parseArgs } from 'node:util';
import { AmqpConnection, ConfirmPublisher } from '../src/core/amqp';
import { loadConfig } from '../src/core/config';
import { createDb, type Knex } from '../src/core/db';
import { silentLogger } from '../src/core/logger';
import { declareCore, EXCHANGE, RESULTS_ROUTING_KEY } from '../src/core/topology';
import { ResultsService } from '../src/results';
import { createTestDatabase, createTestVhost } from '../test/helpers/services';

const { values } = parseArgs({
  options: {
    runs: { type: 'string' },
    jobs: { type: 'string' },
    prefetch: { type: 'string' },
    batch: { type: 'string' },
    order: { type: 'string' },
    timings: { type: 'boolean' },
  },
});
const ORDER = values.order ?? 'waves';
if (ORDER !== 'waves' && ORDER !== 'separate') throw new Error('--order is waves or separate');
const WAVE = 16;
const RUNS = Number(values.runs ?? 25_000);
const JOBS = Number(values.jobs ?? 100);

function hex32(i: number): string {
  return (i.toString(16).padStart(8, '0') + 'b'.repeat(24)).slice(0, 32);
}

interface Run {
  runId: string;
  jobId: number;
  scheduledFor: Date;
  start: Date;
  end: Date;
  rc: number;
}

function makeRuns(jobIds: number[]): Run[] {
  const base = Date.now() - 3_600_000;
  return Array.from({ length: RUNS }, (_, i) => {
    const scheduledFor = new Date(base + i * 100);
    return {
      runId: hex32(i),
      jobId: jobIds[i % jobIds.length]!,
      scheduledFor,
      start: new Date(scheduledFor.getTime() + 20),
      end: new Date(scheduledFor.getTime() + 520),
      rc: i % 10 === 0 ? 1 : 0,
    };
  });
}

async function insertChunks(
  db: Knex,
  table: string,
  rows: Array<Record<string, unknown>>,
  per = 1000,
): Promise<void> {
  for (let i = 0; i < rows.length; i += per) await db(table).insert(rows.slice(i, i + per));
}

function messagesOf(r: Run): Array<Record<string, unknown>> {
  const common = {
    job_id: r.jobId,
    run_id: r.runId,
    start_time: r.start.toISOString(),
    'x-host': 'bench.example.com',
    name: `job ${r.jobId}`,
  };
  return [
    { ...common, type: 'starting', 'x-send-datetime': r.start.toISOString() },
    {
      ...common,
      type: 'finished',
      'x-send-datetime': r.end.toISOString(),
      return_code: r.rc,
      run_time: 0.5,
      status: r.rc === 0 ? 'succeeded' : 'failed',
      output: 'ok\n',
    },
  ];
}

/**
 * The ceiling: the same rows the consumer ends with (50,000 events, 25,000
 * finished runs) written by plain multi-row INSERTs into the same schema
 * (a second database, migrated the same way, with the same jobs, so
 * foreign keys and indexes are the same), 1,000 messages' rows per
 * transaction. Measured before and after the consumer, and averaged, so a
 * burst of load from other processes on this shared machine does not land
 * on one side only.
 */
async function ceiling(runs: Run[], jobs: number): Promise<number> {
  const cdb = await createTestDatabase({ poolMax: 2 });
  try {
    for (let j = 0; j < jobs; j += 1)
      await cdb
        .db('jobs')
        .insert({ name: `job ${j}`, command: 'true', schedule: 'R/2024-01-01T00:00:00Z/PT1M' });
    const [[first]] = (await cdb.db.raw('SELECT MIN(id) AS id FROM jobs')) as [[{ id: number }]];
    const offset = Number(first.id) - runs[0]!.jobId;
    const perTx = 500; // runs per transaction = 1,000 messages
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < runs.length; i += perTx) {
      const chunk = runs.slice(i, i + perTx);
      await cdb.db.transaction(async (trx) => {
        await trx('events').insert(
          chunk.flatMap((r) => [
            {
              job_id: r.jobId + offset,
              datetime: r.start,
              run_id: r.runId,
              type: 'starting',
              host: 'bench.example.com',
              return_code: null,
              message_key: `${r.runId}:starting`,
            },
            {
              job_id: r.jobId + offset,
              datetime: r.end,
              run_id: r.runId,
              type: 'finished',
              host: 'bench.example.com',
              return_code: r.rc,
              message_key: `${r.runId}:finished`,
            },
          ]),
        );
        await trx('runs').insert(
          chunk.map((r) => ({
            run_id: r.runId,
            job_id: r.jobId + offset,
            job_name: `job ${r.jobId}`,
            scheduled_for: r.scheduledFor,
            status: r.rc === 0 ? 'succeeded' : 'failed',
            host: 'bench.example.com',
            queued_at: r.scheduledFor,
            published_at: r.scheduledFor,
            started_at: r.start,
            finished_at: r.end,
            heartbeat_at: r.end,
            return_code: r.rc,
            run_time: 0.5,
            output_tail: 'ok\n',
          })),
        );
      });
    }
    return Number(process.hrtime.bigint() - t0) / 1e9;
  } finally {
    await cdb.drop();
  }
}

async function main(): Promise<void> {
  const [tdb, vhost] = await Promise.all([createTestDatabase({ poolMax: 4 }), createTestVhost()]);
  try {
    const jobIds: number[] = [];
    for (let j = 0; j < JOBS; j += 1) {
      const [id] = await tdb
        .db('jobs')
        .insert({ name: `job ${j}`, command: 'true', schedule: 'R/2024-01-01T00:00:00Z/PT1M' });
      jobIds.push(Number(id));
    }
    const runs = makeRuns(jobIds);
    await insertChunks(
      tdb.db,
      'runs',
      runs.map((r) => ({
        run_id: r.runId,
        job_id: r.jobId,
        job_name: `job ${r.jobId}`,
        scheduled_for: r.scheduledFor,
        status: 'queued',
        queued_at: r.scheduledFor,
        published_at: r.scheduledFor,
      })),
    );

    const conn = await vhost.connect();
    const ch = await conn.createConfirmChannel();
    await declareCore(ch);
    const messages: Array<Record<string, unknown>> = [];
    if (ORDER === 'separate')
      messages.push(...runs.map((r) => messagesOf(r)[0]!), ...runs.map((r) => messagesOf(r)[1]!));
    else {
      for (let i = 0; i < runs.length; i += WAVE) {
        const wave = runs.slice(i, i + WAVE);
        messages.push(...wave.map((r) => messagesOf(r)[0]!), ...wave.map((r) => messagesOf(r)[1]!));
      }
    }
    const p0 = process.hrtime.bigint();
    for (let i = 0; i < messages.length; i += 1) {
      ch.publish(EXCHANGE, RESULTS_ROUTING_KEY, Buffer.from(JSON.stringify(messages[i])), {
        persistent: true,
        contentType: 'application/json',
      });
      if (i % 2000 === 1999) await ch.waitForConfirms();
    }
    await ch.waitForConfirms();
    const publishSeconds = Number(process.hrtime.bigint() - p0) / 1e9;
    await ch.close();

    const ceilingBefore = await ceiling(runs, JOBS);
    const config = loadConfig({
      DATABASE_URL: tdb.url,
      RABBITMQ_URL: vhost.url,
      CRONQ_RESULTS_PREFETCH: values.prefetch,
    });
    const logger = silentLogger();
    const db = createDb(config.database, { poolMax: 4, isolationLevel: 'READ COMMITTED' }); // as cronq-results
    const connection = new AmqpConnection(config.amqp, { logger, name: 'bench-results' });
    const publisher = new ConfirmPublisher(connection, logger);
    const timings = new Map<string, number[]>();
    const starts = new Map<string, bigint>();
    // --timings: per-statement times of the consumer's writes, on stderr.
    type QueryEvent = { __knexQueryUid: string; sql: string };
    if (values.timings) {
      db.on('query', (q: QueryEvent) => starts.set(q.__knexQueryUid, process.hrtime.bigint()));
      db.on('query-response', (_r: unknown, q: QueryEvent) => {
        const t = Number(process.hrtime.bigint() - starts.get(q.__knexQueryUid)!) / 1e6;
        const k = q.sql.replace(/\s+/g, ' ').slice(0, 30);
        (timings.get(k) ?? timings.set(k, []).get(k)!).push(t);
      });
    }
    const batchSize = values.batch ? Number(values.batch) : undefined;
    const service = new ResultsService({
      db,
      connection,
      publisher,
      config: config.results,
      logger,
      batchSize,
    });
    // The clock starts when the broker has accepted the consumer: connecting
    // (a one-off of a long-running process) is reported apart.
    const s0 = process.hrtime.bigint();
    await service.start();
    while (!service.status().consuming) await new Promise((r) => setTimeout(r, 1));
    const t0 = process.hrtime.bigint();
    const startupSeconds = Number(t0 - s0) / 1e9;
    while (service.status().stored < messages.length) await new Promise((r) => setTimeout(r, 5));
    const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
    const status = service.status();
    for (const [k, v] of timings)
      console.error(
        k.padEnd(32),
        v.length,
        (v.reduce((a, b) => a + b, 0) / v.length).toFixed(1),
        v.reduce((a, b) => a + b, 0).toFixed(0),
      );
    await service.stop();
    await publisher.close();
    await connection.close();
    await db.destroy();

    const ceilingAfter = await ceiling(runs, JOBS);
    const [[ev]] = (await tdb.db.raw('SELECT COUNT(*) AS n FROM events')) as [[{ n: number }]];
    const [[fin]] = (await tdb.db.raw(
      "SELECT COUNT(*) AS n FROM runs WHERE status IN ('succeeded','failed')",
    )) as [[{ n: number }]];
    const ceilingSeconds = (ceilingBefore + ceilingAfter) / 2;
    const resultsPerSecond = messages.length / seconds;
    const ceilingPerSecond = messages.length / ceilingSeconds;
    const ratio = resultsPerSecond / ceilingPerSecond;
    process.stdout.write(
      JSON.stringify(
        {
          benchmark: 'results',
          order:
            ORDER === 'waves'
              ? `waves of ${WAVE} runs (starting x${WAVE}, finished x${WAVE})`
              : 'separate (all startings, then all finisheds)',
          messages: messages.length,
          runs: RUNS,
          jobs: JOBS,
          prefetch: status.prefetch,
          batchSize: status.batchSize,
          flushMs: config.results.flushMs,
          batches: status.batches,
          preloadSeconds: Number(publishSeconds.toFixed(3)),
          startupSeconds: Number(startupSeconds.toFixed(3)),
          seconds: Number(seconds.toFixed(3)),
          resultsPerSecond: Math.round(resultsPerSecond),
          ceiling: {
            what: 'plain multi-row INSERT of the same events + runs rows into the same schema, 1,000 messages per transaction; mean of a run before and one after',
            seconds: Number(ceilingSeconds.toFixed(3)),
            beforeSeconds: Number(ceilingBefore.toFixed(3)),
            afterSeconds: Number(ceilingAfter.toFixed(3)),
            resultsPerSecond: Math.round(ceilingPerSecond),
          },
          ratioToCeiling: Number(ratio.toFixed(3)),
          verified: { events: Number(ev.n), finalRuns: Number(fin.n) },
          targets: {
            ratioToCeiling: 0.4,
            resultsPerSecond: 5000,
            met:
              ratio >= 0.4 &&
              resultsPerSecond >= 5000 &&
              Number(ev.n) === messages.length &&
              Number(fin.n) === RUNS,
          },
        },
        null,
        2,
      ) + '\n',
    );
  } finally {
    await vhost.drop();
    await tdb.drop();
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`bench:results failed: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
