/**
 * pg-boss worker for the comparison. pg-boss 10 has no per-worker
 * concurrency option (v9's teamSize was removed); its documented way to run
 * N jobs at once is N `work()` calls, each a polling loop. So: 16 `work()`
 * calls per process, batchSize 1, pollingIntervalSeconds 0.5 (the minimum
 * pg-boss accepts). Each job spawns `/bin/sh -c true`; pg-boss marks it
 * completed when the handler resolves (with the output as the job's output
 * under BENCH_KEEP_OUTPUT=1).
 *
 * After a job, the worker calls pg-boss's public `notifyWorker(id)` on
 * itself, so a busy worker fetches again at once instead of sleeping out the
 * rest of its 0.5 s polling interval (an idle one still polls every 0.5 s).
 * Without it every worker loop is capped at 2 jobs/s: 64 runs/s for the two
 * processes. BENCH_PGBOSS_NOTIFY=0 measures plain polling.
 */
import PgBoss from 'pg-boss';
import { KEEP_OUTPUT, runShellTrue } from '../lib/spawn-true';
import { workerReporter } from '../lib/workers';

interface JobData {
  job: string;
  due: number;
}

async function main(): Promise<void> {
  const reporter = workerReporter();
  const boss = new PgBoss({
    connectionString: process.env.BENCH_PG_URL!,
    supervise: false,
    schedule: false,
    max: 20,
  });
  boss.on('error', (err: Error) => reporter.error(String(err)));
  await boss.start();
  const queue = process.env.BENCH_QUEUE!;
  const concurrency = Number(process.env.BENCH_CONCURRENCY ?? 16);
  const notify = process.env.BENCH_PGBOSS_NOTIFY !== '0';
  for (let i = 0; i < concurrency; i++) {
    let id: string | undefined;
    id = await boss.work<JobData>(
      queue,
      { batchSize: 1, pollingIntervalSeconds: 0.5 },
      async ([job]) => {
        const startedAt = Date.now();
        const { code, output } = await runShellTrue();
        reporter.record({
          job: job!.data.job,
          scheduledFor: job!.data.due,
          startedAt,
          finishedAt: Date.now(),
        });
        if (notify && id) boss.notifyWorker(id);
        if (code !== 0) throw new Error(`exit ${code}`);
        // Stored by pg-boss as the job's output.
        return KEEP_OUTPUT ? { code, output } : undefined;
      },
    );
  }
  reporter.ready();
  const stop = async () => {
    await boss.stop({ graceful: true, wait: true, timeout: 5000 }).catch(() => undefined);
    process.exit(0);
  };
  process.once('SIGTERM', () => void stop());
  process.once('SIGINT', () => void stop());
}

main().catch((err) => {
  console.error('pg-boss worker:', err);
  process.exit(1);
});
