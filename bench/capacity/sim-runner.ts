/**
 * A simulated runner for the capacity benchmark (bench-only): it takes each
 * job message from the job queue and reports `starting` and `finished` the
 * way cronq-runner does (same messages, same exchange, publisher confirms,
 * the delivery acked once the broker has both), without spawning anything.
 * So the benchmark measures the central tier, not the shells.
 */
import { OutputTail } from '../../src/runner/output-tail';
import amqp from 'amqplib';
import { parseJobMessage } from '../../src/core/messages';
import { finishedResult, resultMessageId, startingResult } from '../../src/runner/result-messages';
import type { ProcessOutcome } from '../../src/runner/job-process';
import {
  declareCore,
  declareJobQueue,
  EXCHANGE,
  RESULTS_ROUTING_KEY,
} from '../../src/core/topology';
import type { QueueType } from '../../src/core/queue-type';

async function main(): Promise<void> {
  const url = process.env.BENCH_AMQP_URL!;
  const type = (process.env.BENCH_QUEUE_TYPE ?? 'classic') as QueueType;
  const prefetch = Number(process.env.BENCH_PREFETCH ?? 200);
  const conn = await amqp.connect(url);
  conn.on('error', () => undefined);
  const sub = await conn.createChannel();
  await declareCore(sub, type);
  await declareJobQueue(sub, 'cronq_jobs', type);
  await sub.prefetch(prefetch);
  const pub = await conn.createConfirmChannel();
  const publish = (body: object, messageId: string) =>
    new Promise<void>((resolve, reject) =>
      pub.publish(
        EXCHANGE,
        RESULTS_ROUTING_KEY,
        Buffer.from(JSON.stringify(body)),
        { persistent: true, contentType: 'application/json', messageId },
        (err) => (err ? reject(err) : resolve()),
      ),
    );
  await sub.consume('cronq_jobs', (msg) => {
    if (!msg) return;
    const job = parseJobMessage(msg.content);
    const startTime = new Date();
    const c = { job, host: 'sim', startTime };
    const now = Date.now();
    const outcome = { returnCode: 0, spawnedAt: now, exitedAt: now } as ProcessOutcome;
    Promise.all([
      publish(startingResult(c), resultMessageId(job.runId, 'starting')),
      publish(
        finishedResult(c, outcome, new OutputTail(0), null),
        resultMessageId(job.runId, 'finished'),
      ),
    ]).then(
      () => sub.ack(msg),
      () => sub.nack(msg, false, true),
    );
  });
  process.stdout.write('ready\n');
  const stop = () => {
    void conn.close().finally(() => process.exit(0));
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}

main().catch((err) => {
  console.error('sim runner:', err);
  process.exit(1);
});
