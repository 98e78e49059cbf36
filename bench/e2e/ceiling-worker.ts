/**
 * Bare-pipeline worker: consume a job message, spawn `/bin/sh -c true`,
 * publish the result with a publisher confirm, then ack the job. No CronQ
 * code at all: this is the machine's ceiling for the same libraries.
 */
import amqp from 'amqplib';
import { KEEP_OUTPUT, runShellTrue } from '../lib/spawn-true';
import { workerReporter } from '../lib/workers';

async function main(): Promise<void> {
  const reporter = workerReporter();
  const conn = await amqp.connect(process.env.BENCH_AMQP_URL!);
  const consume = await conn.createChannel();
  const publish = await conn.createConfirmChannel();
  await consume.prefetch(Number(process.env.BENCH_CONCURRENCY ?? 16));
  await consume.consume('bench_jobs', (msg) => {
    if (!msg) return;
    const job = JSON.parse(msg.content.toString()) as { run_id: string; job_id: number };
    void (async () => {
      const { code, output } = await runShellTrue();
      const body = Buffer.from(
        JSON.stringify({
          run_id: job.run_id,
          job_id: job.job_id,
          return_code: code,
          finished_at: Date.now(),
          ...(KEEP_OUTPUT ? { output } : {}),
        }),
      );
      publish.publish('', 'bench_results', body, { persistent: true }, (err) => {
        if (err) reporter.error(String(err));
        else consume.ack(msg);
      });
    })();
  });
  reporter.ready();
  const stop = async () => {
    await conn.close().catch(() => undefined);
    process.exit(0);
  };
  process.once('SIGTERM', () => void stop());
  process.once('SIGINT', () => void stop());
}

main().catch((err) => {
  console.error('ceiling worker:', err);
  process.exit(1);
});
