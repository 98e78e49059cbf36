import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { ChannelModel, ConfirmChannel } from 'amqplib';
import { buildJobMessage } from '../../src/core/messages';
import { MessageSigner, messageKey } from '../../src/core/signing';
import {
  DEFAULT_JOB_QUEUE,
  EXCHANGE,
  RESULTS_DEAD_QUEUE,
  RESULTS_ROUTING_KEY,
  declareCore,
  declareJobQueue,
  refusedJobQueue,
} from '../../src/core/topology';
import { insertJobs } from '../helpers/injector';
import { startCommand, type Proc } from '../helpers/processes';
import {
  eventsOf,
  insertJob,
  insertRun,
  newRunId,
  resultMessage,
  runRow,
} from '../helpers/results';
import {
  createTestDatabase,
  createTestVhost,
  queueCounts,
  waitFor,
  type TestDatabase,
  type TestVhost,
} from '../helpers/services';

/**
 * Message signing with the real daemons (docs/security.md): with
 * CRONQ_MESSAGE_KEY set on all of them a job runs end to end, while job and
 * result messages that someone with only broker access publishes (unsigned,
 * signed with another key, replayed from long ago, or signed for another
 * run) do nothing but land in a dead queue. Without the key, unsigned
 * messages are taken as before.
 */

const KEY = 'k'.repeat(24) + '-test-message-key-1';
const WRONG_KEY = 'w'.repeat(24) + '-someone-elses-key';
const HOUR = 3_600_000;

interface Stack {
  tdb: TestDatabase;
  vhost: TestVhost;
  tmp: string;
  procs: Proc[];
  conn: ChannelModel;
  ch: ConfirmChannel;
}

async function openStack(name: string): Promise<Stack> {
  const [tdb, vhost] = await Promise.all([createTestDatabase(), createTestVhost()]);
  const tmp = mkdtempSync(path.join(tmpdir(), `cronq-${name}-`));
  const conn = await vhost.connect();
  const ch = await conn.createConfirmChannel();
  await declareCore(ch);
  await declareJobQueue(ch, DEFAULT_JOB_QUEUE);
  return { tdb, vhost, tmp, procs: [], conn, ch };
}

async function closeStack(s: Stack | undefined): Promise<void> {
  if (!s) return;
  await Promise.all(s.procs.map((p) => p.stop(10_000)));
  await s.vhost.drop();
  await s.tdb.drop();
  rmSync(s.tmp, { recursive: true, force: true });
}

async function startDaemons(s: Stack, env: Record<string, string>): Promise<Proc[]> {
  const base = { DATABASE_URL: s.tdb.url, RABBITMQ_URL: s.vhost.url, CRONQ_LOG_LEVEL: 'info' };
  const results = startCommand('cronq-results', { env: { ...base, ...env } });
  const runner = startCommand('cronq-runner', {
    env: {
      ...base,
      ...env,
      LOG_PATH: s.tmp,
      CRONQ_RESULT_BUFFER_PATH: path.join(s.tmp, 'buffer'),
      CRONQ_HOSTNAME: 'signing-runner',
    },
  });
  s.procs.push(results, runner);
  await Promise.all([
    results.waitForLine('consuming results', 40_000),
    runner.waitForLine('runner started', 40_000),
  ]);
  return [results, runner];
}

function jobBody(runId: string, command: string): Buffer {
  return Buffer.from(
    JSON.stringify(
      buildJobMessage({
        runId,
        jobId: 1,
        name: 'forged',
        command,
        timeoutSeconds: null,
        scheduledFor: new Date(),
        trigger: 'manual',
      }),
    ),
  );
}

async function publish(
  ch: ConfirmChannel,
  routingKey: string,
  body: Buffer,
  headers?: Record<string, string>,
): Promise<void> {
  ch.publish(EXCHANGE, routingKey, body, {
    persistent: true,
    contentType: 'application/json',
    ...(headers ? { headers } : {}),
  });
  await ch.waitForConfirms();
}

/** The dead-letter reasons of every message in `queue` (taken off it). */
async function deadReasons(ch: ConfirmChannel, queue: string): Promise<string[]> {
  const reasons: string[] = [];
  for (;;) {
    const m = await ch.get(queue, { noAck: true });
    if (m === false) return reasons.sort();
    reasons.push(String(m.properties.headers?.['x-cronq-dead-reason']));
  }
}

describe('with CRONQ_MESSAGE_KEY on every daemon', () => {
  let s: Stack;
  let runner: Proc;
  const signer = new MessageSigner([messageKey(KEY)]);

  before(async () => {
    s = await openStack('signing');
    [, runner] = await startDaemons(s, { CRONQ_MESSAGE_KEY: KEY });
    s.procs.push(
      startCommand('cronq-injector', {
        env: {
          DATABASE_URL: s.tdb.url,
          RABBITMQ_URL: s.vhost.url,
          CRONQ_LOG_LEVEL: 'info',
          CRONQ_MESSAGE_KEY: KEY,
        },
      }),
    );
    await s.procs[2]!.waitForLine('injector running', 40_000);
  });
  after(() => closeStack(s));

  test('a job runs end to end: the injector signs it, the runner checks it and signs its results', async () => {
    const marker = path.join(s.tmp, 'end-to-end');
    const envFile = path.join(s.tmp, 'job-env');
    const [jobId] = await insertJobs(
      s.tdb.db,
      [
        {
          name: 'signed job',
          schedule: null,
          nextRun: null,
          runNow: true,
          command: `env > ${envFile}; touch ${marker}`,
        },
      ],
      'signing',
    );
    const run = await waitFor(
      async () => {
        const r = await s.tdb.db('runs').where({ job_id: jobId }).first();
        return r && r.status === 'succeeded' ? r : undefined;
      },
      { timeoutMs: 60_000, message: 'the signed run is stored as succeeded' },
    );
    assert.equal(run.host, 'signing-runner');
    assert.ok(existsSync(marker));
    // The key is a secret: the job does not get it.
    const env = readFileSync(envFile, 'utf8');
    assert.match(env, /^CRONQ_RUN_ID=/m);
    assert.ok(!env.includes(KEY), 'the message key reached the job');
  });

  test('forged job messages are not run: they are moved to the dead queue with their reason', async () => {
    const cases: Array<{
      name: string;
      body: (runId: string) => Buffer;
      headers: (runId: string, body: Buffer) => Record<string, string> | undefined;
    }> = [
      {
        name: 'unsigned',
        body: (r) => jobBody(r, `touch ${path.join(s.tmp, 'forged-unsigned')}`),
        headers: () => undefined,
      },
      {
        name: 'other-key',
        body: (r) => jobBody(r, `touch ${path.join(s.tmp, 'forged-other-key')}`),
        headers: (r, b) => new MessageSigner([messageKey(WRONG_KEY)]).sign('job', r, b),
      },
      {
        name: 'replayed',
        body: (r) => jobBody(r, `touch ${path.join(s.tmp, 'forged-replayed')}`),
        headers: (r, b) =>
          new MessageSigner([messageKey(KEY)], () => Date.now() - 2 * HOUR).sign('job', r, b),
      },
      {
        name: 'other-run',
        body: (r) => jobBody(r, `touch ${path.join(s.tmp, 'forged-other-run')}`),
        // A genuine signature, lifted from another run's message.
        headers: (_r, b) => signer.sign('job', newRunId(), b),
      },
    ];
    for (const c of cases) {
      const runId = newRunId();
      const body = c.body(runId);
      await publish(s.ch, 'default', body, c.headers(runId, body));
    }
    // A genuine message behind them: once it has run, the runner has decided on every forged one.
    const genuine = path.join(s.tmp, 'genuine');
    const runId = newRunId();
    const body = jobBody(runId, `touch ${genuine}`);
    await publish(s.ch, 'default', body, signer.sign('job', runId, body));
    await waitFor(() => existsSync(genuine), { timeoutMs: 60_000, message: 'the genuine job ran' });
    const dead = refusedJobQueue(DEFAULT_JOB_QUEUE);
    await waitFor(async () => (await queueCounts(s.vhost.vhost, dead)).messages === 4, {
      timeoutMs: 30_000,
      message: `the four forged jobs are in ${dead}`,
    });
    for (const c of cases)
      assert.ok(!existsSync(path.join(s.tmp, `forged-${c.name}`)), `forged job "${c.name}" ran`);
    assert.deepEqual(await deadReasons(s.ch, dead), [
      'refused: bad signature',
      'refused: signed too long ago',
      'refused: unknown key',
      'refused: unsigned',
    ]);
    // Logged with the reason, never with the body (the command).
    const refusals = runner.lines().filter((l) => l.includes('refusing a job message'));
    assert.equal(refusals.length, 4);
    assert.ok(!runner.output().includes('forged-'), 'a refused body never reaches the log');
  });

  test('a genuine job message older than the age limit is not run, and its run is recorded failed with why', async () => {
    const marker = path.join(s.tmp, 'too-late');
    const jobId = await insertJob(s.tdb.db, 'waited too long');
    const runId = await insertRun(s.tdb.db, jobId);
    const body = Buffer.from(
      JSON.stringify(
        buildJobMessage({
          runId,
          jobId,
          name: 'waited too long',
          command: `touch ${marker}`,
          timeoutSeconds: null,
          scheduledFor: new Date(),
          trigger: 'manual',
        }),
      ),
    );
    // Signed with the key two hours ago: what a job that waited out a long runner outage looks like.
    const longAgo = new MessageSigner([messageKey(KEY)], () => Date.now() - 2 * HOUR);
    await publish(s.ch, 'default', body, longAgo.sign('job', runId, body));
    const row = await waitFor(
      async () => {
        const r = await runRow(s.tdb.db, runId);
        return r?.status === 'failed' ? r : undefined;
      },
      { timeoutMs: 30_000, message: 'the run is recorded as failed' },
    );
    assert.match(row.reason ?? '', /signed too long ago/);
    assert.ok(!existsSync(marker));
    await waitFor(
      async () =>
        (await queueCounts(s.vhost.vhost, refusedJobQueue(DEFAULT_JOB_QUEUE))).messages === 1,
      { timeoutMs: 30_000, message: 'the message itself is in the dead queue' },
    );
    assert.deepEqual(await deadReasons(s.ch, refusedJobQueue(DEFAULT_JOB_QUEUE)), [
      'refused: signed too long ago',
    ]);
  });

  test('forged results do not change the run; a signed one does', async () => {
    const jobId = await insertJob(s.tdb.db, 'result target');
    const runId = await insertRun(s.tdb.db, jobId, { status: 'running' });
    const forged = Buffer.from(
      JSON.stringify(resultMessage('finished', jobId, runId, { 'x-host': 'forger' })),
    );
    await publish(s.ch, RESULTS_ROUTING_KEY, forged);
    await publish(
      s.ch,
      RESULTS_ROUTING_KEY,
      forged,
      new MessageSigner([messageKey(WRONG_KEY)]).sign('result', runId, forged),
    );
    await publish(s.ch, RESULTS_ROUTING_KEY, forged, signer.sign('result', newRunId(), forged));
    await waitFor(
      async () => (await queueCounts(s.vhost.vhost, RESULTS_DEAD_QUEUE)).messages === 3,
      {
        timeoutMs: 30_000,
        message: 'the three forged results are dead-lettered',
      },
    );
    const row = await runRow(s.tdb.db, runId);
    assert.equal(row?.status, 'running');
    assert.notEqual(row?.host, 'forger');
    assert.deepEqual(await eventsOf(s.tdb.db, runId), []);
    assert.deepEqual(await deadReasons(s.ch, RESULTS_DEAD_QUEUE), [
      'refused: bad signature',
      'refused: unknown key',
      'refused: unsigned',
    ]);

    // The same result, signed with the key, is stored: the refusals were the signatures' doing.
    await publish(s.ch, RESULTS_ROUTING_KEY, forged, signer.sign('result', runId, forged));
    await waitFor(async () => (await runRow(s.tdb.db, runId))?.status === 'succeeded', {
      timeoutMs: 30_000,
      message: 'the signed result is stored',
    });
  });
});

describe('without CRONQ_MESSAGE_KEY (the default)', () => {
  let s: Stack;
  before(async () => {
    s = await openStack('unsigned');
    await startDaemons(s, {});
  });
  after(() => closeStack(s));

  test('unsigned job and result messages are taken as before, and no dead queue is made', async () => {
    const marker = path.join(s.tmp, 'unsigned-ran');
    const jobId = await insertJob(s.tdb.db, 'unsigned job');
    const runId = await insertRun(s.tdb.db, jobId);
    const body = Buffer.from(
      JSON.stringify(
        buildJobMessage({
          runId,
          jobId,
          name: 'unsigned job',
          command: `touch ${marker}`,
          timeoutSeconds: null,
          scheduledFor: new Date(),
          trigger: 'manual',
        }),
      ),
    );
    await publish(s.ch, 'default', body);
    await waitFor(async () => (await runRow(s.tdb.db, runId))?.status === 'succeeded', {
      timeoutMs: 60_000,
      message: 'the unsigned job ran and its (unsigned) results were stored',
    });
    assert.ok(existsSync(marker));
    assert.equal(
      (await queueCounts(s.vhost.vhost, refusedJobQueue(DEFAULT_JOB_QUEUE))).messages,
      -1,
    );
  });
});
