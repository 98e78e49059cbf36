/**
 * CRONQ_QUEUE_TYPE against the real broker: quorum queues are declared with
 * a delivery limit that dead-letters, and a queue that already exists with
 * the other type stops the daemon with one line and exit 2 instead of a
 * reconnect loop.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { rabbitmqctl, useServices, waitFor } from '../helpers/services';
import { startCommand } from '../helpers/processes';
import { declareCore, declareJobQueue, EXCHANGE } from '../../src/core/topology';
import { JOB_DELIVERY_LIMIT } from '../../src/core/queue-type';

async function queueTypes(vhost: string): Promise<Map<string, string>> {
  const out = await rabbitmqctl(
    'list_queues',
    '-p',
    vhost,
    '--no-table-headers',
    '--silent',
    'name',
    'type',
  );
  const types = new Map<string, string>();
  for (const line of out.split('\n')) {
    const [name, type] = line.trim().split(/\s+/);
    if (name && type) types.set(name, type);
  }
  return types;
}

describe('CRONQ_QUEUE_TYPE', () => {
  const svc = useServices();

  it('a runner with quorum declares its job queue, cronq_results and the dead-letter queue as quorum queues', async () => {
    const runner = svc.track(
      startCommand('cronq-runner', {
        env: {
          DATABASE_URL: svc.db.url,
          RABBITMQ_URL: svc.vhost.url,
          CRONQ_QUEUE_TYPE: 'quorum',
          CRONQ_QUEUE: 'qt_quorum_jobs',
          LOG_PATH: '/tmp',
        },
      }),
    );
    await runner.waitForLine('AMQP connected', 30_000);
    const types = await waitFor(async () => {
      const t = await queueTypes(svc.vhost.vhost);
      return t.has('qt_quorum_jobs') ? t : undefined;
    });
    assert.equal(types.get('qt_quorum_jobs'), 'quorum');
    assert.equal(types.get('cronq_results'), 'quorum');
    assert.equal(types.get('cronq_results_dead'), 'quorum');
    await runner.stop();
  });

  it('a quorum job message delivered past its limit is moved to the dead-letter queue, not dropped', async () => {
    const conn = await svc.vhost.connect();
    const ch = await conn.createConfirmChannel();
    await declareCore(ch, 'quorum');
    await declareJobQueue(ch, 'qt_limit_jobs', 'quorum');
    await ch.purgeQueue('cronq_results_dead');
    ch.publish(EXCHANGE, 'qt_limit_jobs', Buffer.from('{"crashes":"every runner"}'), {
      persistent: true,
    });
    await ch.waitForConfirms();
    // A message that kills whatever takes it: handed back on every delivery.
    let deliveries = 0;
    await ch.consume('qt_limit_jobs', (m) => {
      if (!m) return;
      deliveries += 1;
      ch.nack(m, false, true);
    });
    const dead = await waitFor(
      async () => (await ch.get('cronq_results_dead', { noAck: true })) || undefined,
      {
        timeoutMs: 30_000,
        message: 'the message never reached cronq_results_dead',
      },
    );
    assert.equal(dead.content.toString(), '{"crashes":"every runner"}');
    assert.ok(deliveries > JOB_DELIVERY_LIMIT, `${deliveries} deliveries`);
    assert.ok(deliveries <= JOB_DELIVERY_LIMIT + 1, `${deliveries} deliveries`);
    await conn.close();
  });

  for (const [command, existing, wanted, queue] of [
    ['cronq-results', 'classic', 'quorum', 'cronq_results_dead'],
    ['cronq-runner', 'quorum', 'classic', 'cronq_results_dead'],
  ] as const) {
    it(`${command} with ${wanted} against ${existing} queues exits 2 with one line, once`, async () => {
      const conn = await svc.vhost.connect();
      const ch = await conn.createChannel();
      await ch.deleteQueue('cronq_results').catch(() => undefined);
      await ch.deleteQueue('cronq_results_dead').catch(() => undefined);
      await declareCore(ch, existing);
      await conn.close();
      const p = startCommand(command, {
        env: {
          DATABASE_URL: svc.db.url,
          RABBITMQ_URL: svc.vhost.url,
          CRONQ_QUEUE_TYPE: wanted,
          CRONQ_LOG_LEVEL: 'info',
          LOG_PATH: '/tmp',
        },
      });
      svc.track(p);
      const { code } = await p.exited;
      assert.equal(code, 2, p.output());
      const line = p.lines().find((l) => l.startsWith(`${command}: `));
      assert.ok(line, p.output());
      assert.match(
        line,
        new RegExp(`queue '${queue}' in vhost '${svc.vhost.vhost}' is a ${existing} queue`),
      );
      assert.match(line, new RegExp(`CRONQ_QUEUE_TYPE=${wanted}`));
      assert.match(line, /drain the queue, stop every CronQ daemon, delete the queue, restart/);
      // Exactly one connection attempt: no reconnect loop before the exit.
      assert.equal(p.lines().filter((l) => l.includes('AMQP setup')).length, 1, p.output());
      assert.ok(!p.output().includes('reconnecting'), p.output());
      // The existing queue is left as it was.
      assert.equal((await queueTypes(svc.vhost.vhost)).get(queue), existing);
    });
  }
});
