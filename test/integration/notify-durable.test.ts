import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  createTestDatabase,
  createTestVhost,
  waitFor,
  type TestDatabase,
  type TestVhost,
} from '../helpers/services';
import { startCommand, type Proc } from '../helpers/processes';
import { insertRun, resultMessage, ResultPublisher } from '../helpers/results';
import { startReceiver, type Receiver } from '../helpers/notify';
import { parseCategory } from '../../src/core/category';
import { applyCategory } from '../../src/web/category-store';
import { parseOutboxItems } from '../../src/results/notify/outbox';

/**
 * Notifications are durable and sent once: written with the result, they
 * survive a SIGKILL of the consumer before they were sent, and several
 * consumers sending at once send each one once. Each test has its own
 * database and vhost, so only its own consumers see its rows.
 */

let receiver: Receiver;
const cleanup: Array<() => Promise<unknown>> = [];

before(async () => {
  receiver = await startReceiver();
});

after(async () => {
  for (const c of cleanup.reverse()) await c().catch(() => undefined);
  await receiver?.close();
});

async function setup(path: string, jobs: number) {
  const [tdb, vhost] = await Promise.all([createTestDatabase(), createTestVhost()]);
  cleanup.push(
    () => tdb.drop(),
    () => vhost.drop(),
  );
  const name = path.slice(1);
  await applyCategory(
    tdb.db,
    name,
    parseCategory({
      category: name,
      notify: [{ on: ['failed'], webhook: `${receiver.url}${path}` }],
      jobs: Array.from({ length: jobs }, (_, i) => ({
        name: `job ${i}`,
        schedule: 'R/2024-01-01T00:00:00Z/PT1H',
        command: 'false',
      })),
    }),
  );
  const ids = ((await tdb.db('jobs').select('id').orderBy('id')) as Array<{ id: number }>).map(
    (r) => Number(r.id),
  );
  const pub = await ResultPublisher.open(await vhost.connect());
  return { tdb, vhost, ids, pub };
}

function consumer(tdb: TestDatabase, vhost: TestVhost, env: Record<string, string> = {}): Proc {
  const p = startCommand('cronq-results', {
    env: {
      DATABASE_URL: tdb.url,
      RABBITMQ_URL: vhost.url,
      CRONQ_RESULTS_FLUSH_MS: '20',
      CRONQ_NOTIFY_POLL_MS: '50',
      CRONQ_NOTIFY_RETRY_BASE_MS: '200',
      ...env,
    },
  });
  cleanup.push(() => p.stop());
  return p;
}

async function fail(tdb: TestDatabase, pub: ResultPublisher, jobId: number): Promise<string> {
  const runId = await insertRun(tdb.db, jobId);
  await pub.publish(resultMessage('finished', jobId, runId, { status: 'failed', return_code: 1 }));
  return runId;
}

describe('notifications are durable and sent once', () => {
  test('a consumer SIGKILLed after storing a failure and before sending its notification: the next one sends it, once', async () => {
    const { tdb, vhost, ids, pub } = await setup('/killed', 1);
    // This consumer looks for notifications to send at start, then not for ten minutes.
    const first = consumer(tdb, vhost, { CRONQ_NOTIFY_POLL_MS: '600000' });
    await pub.waitForConsumers(1, 40_000);
    const runId = await fail(tdb, pub, ids[0]!);
    // Stored with the failure, in the outbox the sender moves it from (docs/notifications.md).
    const stored = await waitFor(
      async () =>
        ((await tdb.db('notification_outbox').select('items')) as Array<{ items: string }>)
          .flatMap((r) => parseOutboxItems(r.items).items)
          .find((n) => n.run_id === runId),
      { timeoutMs: 15_000, message: 'the notification stored with the failure' },
    );
    assert.equal(stored.event, 'failed');
    first.kill('SIGKILL');
    await first.exited;
    assert.equal(receiver.received.filter((r) => r.path === '/killed').length, 0);

    consumer(tdb, vhost);
    await waitFor(() => receiver.received.find((r) => r.path === '/killed'), {
      timeoutMs: 40_000,
      message: 'the notification sent after the restart',
    });
    await new Promise((r) => setTimeout(r, 1500));
    const got = receiver.received.filter((r) => r.path === '/killed');
    assert.equal(got.length, 1, 'sent once');
    assert.equal(got[0]!.json.run?.id, runId);
    const row = await tdb.db('notifications').where({ run_id: runId }).first();
    assert.equal(row.state, 'sent');
    assert.equal(row.attempts, 1);
    assert.equal(Number((await tdb.db('notification_outbox').count('* as n'))[0]!.n), 0);
  });

  test('three consumers send each of 30 notifications once', async () => {
    const { tdb, vhost, ids, pub } = await setup('/three', 30);
    consumer(tdb, vhost);
    consumer(tdb, vhost);
    consumer(tdb, vhost);
    await pub.waitForConsumers(3, 60_000);
    const runs = await Promise.all(ids.map((id) => fail(tdb, pub, id)));
    await waitFor(
      async () => {
        const [{ n }] = (await tdb
          .db('notifications')
          .where({ state: 'sent' })
          .count('* as n')) as [{ n: number }];
        return Number(n) === runs.length || undefined;
      },
      { timeoutMs: 40_000, message: 'all 30 sent' },
    );
    await new Promise((r) => setTimeout(r, 1500));
    const got = receiver.received.filter((r) => r.path === '/three');
    assert.equal(got.length, 30, 'one POST per notification');
    assert.deepEqual(new Set(got.map((r) => r.json.run?.id)), new Set(runs));
    const [{ n }] = (await tdb.db('notification_attempts').count('* as n')) as [{ n: number }];
    assert.equal(Number(n), 30, 'one attempt each');
  });
});
