import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import amqp, { type ConfirmChannel } from 'amqplib';
import { buildJobMessage } from '../../src/core/messages';
import {
  DEFAULT_JOB_QUEUE,
  EXCHANGE,
  RESULTS_DEAD_QUEUE,
  RESULTS_QUEUE,
  RESULTS_ROUTING_KEY,
  refusedJobQueue,
} from '../../src/core/topology';
import { insertJobs } from '../helpers/injector';
import { ROOT, startCommand, type Proc } from '../helpers/processes';
import { newRunId } from '../helpers/results';
import {
  AMQP_HOST,
  AMQP_PORT,
  createTestDatabase,
  createTestVhost,
  queueCounts,
  rabbitmqctl,
  uniqueName,
  waitFor,
  type TestDatabase,
  type TestVhost,
} from '../helpers/services';

/**
 * The least-privilege RabbitMQ users of docs/security.md, taken from the
 * document itself: each role's user is created on a fresh vhost with
 * exactly the documented permissions, the real daemons run each with its
 * own user (message signing on, so the dead-letter paths are used too), a
 * job runs end to end, and what a role must not do is refused by the broker.
 */

const KEY = 'p'.repeat(24) + '-permissions-test-key';
type Role = 'cronq-injector' | 'cronq-results' | 'cronq-runner' | 'cronq-web';
interface Permissions {
  configure: string;
  write: string;
  read: string;
}

/** The `rabbitmqctl set_permissions` lines of docs/security.md, by role. */
function documentedPermissions(): Map<Role, Permissions> {
  const doc = readFileSync(path.join(ROOT, 'docs', 'security.md'), 'utf8');
  const out = new Map<Role, Permissions>();
  const re = /^rabbitmqctl set_permissions -p "\$VHOST" (\S+) '([^']*)' '([^']*)' '([^']*)'$/gm;
  for (const m of doc.matchAll(re))
    out.set(m[1] as Role, { configure: m[2]!, write: m[3]!, read: m[4]! });
  return out;
}

let tdb: TestDatabase;
let vhost: TestVhost;
let tmp: string;
const users = new Map<Role, { name: string; url: string }>();
const procs: Proc[] = [];

before(async () => {
  [tdb, vhost] = await Promise.all([createTestDatabase(), createTestVhost()]);
  tmp = mkdtempSync(path.join(tmpdir(), 'cronq-permissions-'));
  const perms = documentedPermissions();
  assert.deepEqual([...perms.keys()].sort(), [
    'cronq-injector',
    'cronq-results',
    'cronq-runner',
    'cronq-web',
  ]);
  for (const [role, p] of perms) {
    const name = uniqueName(role.replace('cronq-', 'cq_'));
    const password = randomBytes(12).toString('hex');
    // Registered before it exists, so the after hook removes a half-made user too.
    users.set(role, {
      name,
      url: `amqp://${name}:${password}@${AMQP_HOST}:${AMQP_PORT}/${vhost.vhost}`,
    });
    await rabbitmqctl('add_user', name, password);
    await rabbitmqctl('set_permissions', '-p', vhost.vhost, name, p.configure, p.write, p.read);
  }
});

after(async () => {
  try {
    await Promise.all(procs.map((p) => p.stop(10_000)));
  } finally {
    for (const u of users.values()) await rabbitmqctl('delete_user', u.name).catch(() => undefined);
    await vhost?.drop();
    await tdb?.drop();
    rmSync(tmp, { recursive: true, force: true });
  }
});

function urlOf(role: Role): string {
  return users.get(role)!.url;
}

test('the daemons work on a fresh vhost, each with only its documented permissions', async () => {
  const common = { DATABASE_URL: tdb.url, CRONQ_LOG_LEVEL: 'info', CRONQ_MESSAGE_KEY: KEY };
  const results = startCommand('cronq-results', {
    env: { ...common, RABBITMQ_URL: urlOf('cronq-results') },
  });
  const injector = startCommand('cronq-injector', {
    env: { ...common, RABBITMQ_URL: urlOf('cronq-injector') },
  });
  const runner = startCommand('cronq-runner', {
    env: {
      RABBITMQ_URL: urlOf('cronq-runner'),
      CRONQ_LOG_LEVEL: 'info',
      CRONQ_MESSAGE_KEY: KEY,
      LOG_PATH: tmp,
      CRONQ_RESULT_BUFFER_PATH: path.join(tmp, 'buffer'),
    },
  });
  // The web publishes control orders (kill, wake) on cronq.control.
  const web = startCommand('cronq-web', {
    args: ['--port', '0'],
    env: { DATABASE_URL: tdb.url, RABBITMQ_URL: urlOf('cronq-web'), CRONQ_LOG_LEVEL: 'info' },
  });
  procs.push(results, injector, runner, web);
  await Promise.all([
    results.waitForLine('consuming results', 40_000),
    injector.waitForLine('injector running', 40_000),
    runner.waitForLine('runner started', 40_000),
    web.waitForLine('AMQP connected', 40_000),
    runner.waitForLine('AMQP connected', 40_000),
  ]);

  const marker = path.join(tmp, 'ran');
  const [jobId] = await insertJobs(
    tdb.db,
    [
      {
        name: 'least privilege',
        schedule: null,
        nextRun: null,
        runNow: true,
        command: `touch ${marker}`,
      },
    ],
    'permissions',
  );
  await waitFor(
    async () =>
      (await tdb.db('runs').where({ job_id: jobId, status: 'succeeded' }).first()) !== undefined,
    { timeoutMs: 60_000, message: 'the job ran and its result was stored' },
  );
  assert.ok(existsSync(marker));

  // The dead-letter paths work with these permissions too: an unsigned job
  // and a malformed result, sent by another user, end in the dead queues.
  const conn = await vhost.connect();
  const ch = await conn.createConfirmChannel();
  const forged = path.join(tmp, 'forged');
  ch.publish(
    EXCHANGE,
    'default',
    Buffer.from(
      JSON.stringify(
        buildJobMessage({
          runId: newRunId(),
          jobId,
          name: 'forged',
          command: `touch ${forged}`,
          timeoutSeconds: null,
          scheduledFor: new Date(),
          trigger: 'manual',
        }),
      ),
    ),
  );
  ch.publish(EXCHANGE, RESULTS_ROUTING_KEY, Buffer.from('not json'));
  await ch.waitForConfirms();
  await waitFor(
    async () =>
      (await queueCounts(vhost.vhost, refusedJobQueue(DEFAULT_JOB_QUEUE))).messages === 1 &&
      (await queueCounts(vhost.vhost, RESULTS_DEAD_QUEUE)).messages === 1,
    { timeoutMs: 30_000, message: 'the refused job and the malformed result are dead-lettered' },
  );
  assert.ok(!existsSync(forged));
  for (const p of procs)
    assert.ok(!/ACCESS_REFUSED/.test(p.output()), `a daemon was refused something:\n${p.output()}`);
});

/** Run `op` as `role`'s user and expect the broker to refuse it (403 ACCESS_REFUSED). */
async function assertRefused(
  role: Role,
  what: string,
  op: (ch: ConfirmChannel) => Promise<unknown>,
): Promise<void> {
  const conn = await amqp.connect(urlOf(role));
  conn.on('error', () => undefined);
  try {
    const ch = await conn.createConfirmChannel();
    const closed = new Promise<Error>((resolve) => ch.on('error', resolve));
    const outcome = await Promise.race([
      op(ch).then(
        () => closed, // a publish is refused after the fact, by closing the channel
        (err: Error) => err,
      ),
      closed,
    ]);
    assert.match(String(outcome.message), /ACCESS_REFUSED|403/, `${role} ${what}`);
  } finally {
    await conn.close().catch(() => undefined);
  }
}

test('what each role must not do, the broker refuses', async () => {
  // Set up by an administrator: another runner's queue.
  const admin = await vhost.connect();
  const ach = await admin.createChannel();
  await ach.assertQueue('cronq_other', { durable: true });
  await ach.assertQueue(DEFAULT_JOB_QUEUE, { durable: true });
  await ach.assertQueue(RESULTS_QUEUE, { durable: true });

  const publishAndConfirm = (exchange: string, key: string) => async (ch: ConfirmChannel) => {
    ch.publish(exchange, key, Buffer.from('{}'));
    await ch.waitForConfirms();
  };
  const consume = (queue: string) => (ch: ConfirmChannel) => ch.consume(queue, () => undefined);

  await assertRefused('cronq-runner', 'consumes cronq_results', consume(RESULTS_QUEUE));
  await assertRefused(
    'cronq-web',
    'publishes a job message',
    publishAndConfirm(EXCHANGE, 'default'),
  );
  await assertRefused('cronq-web', 'consumes a job queue', consume(DEFAULT_JOB_QUEUE));
  await assertRefused('cronq-runner', "consumes another runner's queue", consume('cronq_other'));
  await assertRefused('cronq-runner', 'declares another queue', (ch) =>
    ch.assertQueue('cronq_runner_made_this', { durable: true }),
  );
  await assertRefused(
    'cronq-runner',
    'publishes through the default exchange',
    publishAndConfirm('', 'cronq_other'),
  );
  await assertRefused(
    'cronq-results',
    'publishes a job message',
    publishAndConfirm(EXCHANGE, 'default'),
  );
  await assertRefused(
    'cronq-results',
    'publishes through the default exchange',
    publishAndConfirm('', DEFAULT_JOB_QUEUE),
  );
  await assertRefused('cronq-results', 'consumes a job queue', consume(DEFAULT_JOB_QUEUE));
  await assertRefused('cronq-injector', 'consumes a job queue', consume(DEFAULT_JOB_QUEUE));
  await assertRefused('cronq-injector', 'consumes cronq_results', consume(RESULTS_QUEUE));
  await assertRefused(
    'cronq-injector',
    'publishes through the default exchange',
    publishAndConfirm('', DEFAULT_JOB_QUEUE),
  );
});
