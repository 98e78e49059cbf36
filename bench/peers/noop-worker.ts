/**
 * No-op workers for the capacity benchmark (bench/capacity.ts): BullMQ or
 * pg-boss workers whose processor does nothing, so what is measured is the
 * queue and its store, as with CronQ's simulated runners.
 *   BENCH_PEER=bullmq BENCH_REDIS_URL BENCH_QUEUE BENCH_PREFIX BENCH_CONCURRENCY
 *   BENCH_PEER=pgboss BENCH_PG_URL BENCH_QUEUE BENCH_CONCURRENCY
 */
import { Worker } from 'bullmq';
import PgBoss from 'pg-boss';

async function bullmq(): Promise<() => Promise<void>> {
  const url = new URL(process.env.BENCH_REDIS_URL!);
  const worker = new Worker(process.env.BENCH_QUEUE!, async () => undefined, {
    connection: { host: url.hostname, port: Number(url.port), maxRetriesPerRequest: null },
    prefix: process.env.BENCH_PREFIX,
    concurrency: Number(process.env.BENCH_CONCURRENCY ?? 64),
  });
  worker.on('error', (err) => console.error('bullmq worker:', String(err)));
  await worker.waitUntilReady();
  return () => worker.close();
}

async function pgboss(): Promise<() => Promise<void>> {
  const boss = new PgBoss({
    connectionString: process.env.BENCH_PG_URL!,
    supervise: false,
    schedule: false,
    max: 10,
  });
  boss.on('error', (err: Error) => console.error('pg-boss worker:', String(err)));
  await boss.start();
  const loops = Number(process.env.BENCH_CONCURRENCY ?? 4);
  for (let i = 0; i < loops; i++) {
    // Batches of 50 per fetch: pg-boss's documented way to go fast; the handler does nothing.
    await boss.work(
      process.env.BENCH_QUEUE!,
      { batchSize: 50, pollingIntervalSeconds: 0.5 },
      async () => undefined,
    );
  }
  return () => boss.stop({ graceful: false, wait: true, timeout: 2000 });
}

async function main(): Promise<void> {
  const stop = process.env.BENCH_PEER === 'pgboss' ? await pgboss() : await bullmq();
  process.stdout.write('ready\n');
  const end = () => void stop().finally(() => process.exit(0));
  process.once('SIGTERM', end);
  process.once('SIGINT', end);
}

main().catch((err) => {
  console.error('noop worker:', err);
  process.exit(1);
});
