/**
 * BullMQ worker for the comparison: concurrency 16, each job spawns
 * `/bin/sh -c true` and is completed by BullMQ when the processor returns
 * (with the output as its returnvalue under BENCH_KEEP_OUTPUT=1).
 * The occurrence a scheduler job stands for is the millisecond BullMQ puts
 * in its id (`repeat:<scheduler id>:<millis>`); burst jobs carry it in data.
 */
import { Worker, type Job } from 'bullmq';
import { KEEP_OUTPUT, runShellTrue } from '../lib/spawn-true';
import { workerReporter } from '../lib/workers';

interface JobData {
  job?: string;
  due?: number;
}

function occurrence(job: Job<JobData>): { key: string; due: number } {
  const m = /^repeat:(.+):(\d+)$/.exec(job.id ?? '');
  if (m) return { key: m[1]!, due: Number(m[2]) };
  return { key: job.data.job ?? String(job.id), due: job.data.due ?? job.timestamp };
}

async function main(): Promise<void> {
  const reporter = workerReporter();
  const url = new URL(process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379');
  const worker = new Worker<JobData>(
    process.env.BENCH_QUEUE!,
    async (job) => {
      const startedAt = Date.now();
      const { code, output } = await runShellTrue();
      const { key, due } = occurrence(job);
      reporter.record({ job: key, scheduledFor: due, startedAt, finishedAt: Date.now() });
      if (code !== 0) throw new Error(`exit ${code}`);
      // Stored by BullMQ as the job's returnvalue.
      return KEEP_OUTPUT ? { code, output } : undefined;
    },
    {
      connection: {
        host: url.hostname,
        port: Number(url.port || 6379),
        maxRetriesPerRequest: null,
      },
      prefix: process.env.BENCH_PREFIX,
      concurrency: Number(process.env.BENCH_CONCURRENCY ?? 16),
    },
  );
  worker.on('error', (err) => reporter.error(String(err)));
  await worker.waitUntilReady();
  reporter.ready();
  const stop = async () => {
    await worker.close().catch(() => undefined);
    process.exit(0);
  };
  process.once('SIGTERM', () => void stop());
  process.once('SIGINT', () => void stop());
}

main().catch((err) => {
  console.error('bullmq worker:', err);
  process.exit(1);
});
