import { test } from 'node:test';
import assert from 'node:assert/strict';
import { rabbitmqctl, waitFor, useServices } from '../helpers/services';
import { startCommand } from '../helpers/processes';
import {
  insertJob,
  insertRun,
  newRunId,
  resultMessage,
  ResultPublisher,
  runRow,
} from '../helpers/results';

/**
 * DISRUPTIVE: stops and restarts the shared RabbitMQ application. The
 * results consumer must ride out the outage (back off, reconnect, consume
 * again) and never exit; results published after the broker is back are
 * stored. The broker is started again in `finally` whatever happens.
 */

const svc = useServices();

async function stored(runId: string, status: string): Promise<void> {
  await waitFor(async () => (await runRow(svc.db.db, runId))?.status === status, {
    timeoutMs: 45_000,
    message: `run ${runId} ${status}`,
  });
}

test('a broker restart: the results consumer reconnects by itself and stores what comes after', async () => {
  const consumer = svc.track(
    startCommand('cronq-results', {
      env: { DATABASE_URL: svc.db.url, RABBITMQ_URL: svc.vhost.url, CRONQ_LOG_LEVEL: 'info' },
    }),
  );
  await consumer.waitForLine('consuming results', 40_000);
  const jobId = await insertJob(svc.db.db, 'broker-restart');
  const before = await insertRun(svc.db.db, jobId);
  let pub = await ResultPublisher.open(await svc.vhost.connect());
  await pub.publish(resultMessage('starting', jobId, before));
  await stored(before, 'running');

  try {
    await rabbitmqctl('stop_app');
    await new Promise((r) => setTimeout(r, 3000));
  } finally {
    await rabbitmqctl('start_app');
  }
  await rabbitmqctl('await_startup');

  await waitFor(
    () => consumer!.lines().filter((l) => l.includes('consuming results')).length >= 2,
    {
      timeoutMs: 45_000,
      message: 'the consumer consumes again after the restart',
    },
  );
  pub = await ResultPublisher.open(await svc.vhost.connect());
  const after = newRunId();
  await pub.publish(
    resultMessage('finished', jobId, before),
    resultMessage('starting', jobId, after),
    resultMessage('finished', jobId, after),
  );
  await stored(before, 'succeeded');
  await stored(after, 'succeeded');
  assert.equal(consumer.child.exitCode, null, 'the consumer never exited');
  assert.ok(consumer.lines().some((l) => l.includes('AMQP connection lost')));
});
