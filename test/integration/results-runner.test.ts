import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { buildJobMessage } from '../../src/core/messages';
import {
  EXCHANGE,
  DEFAULT_JOB_QUEUE,
  declareJobQueue,
  routingKeyForQueue,
} from '../../src/core/topology';
import {
  createTestDatabase,
  createTestVhost,
  waitFor,
  type TestDatabase,
  type TestVhost,
} from '../helpers/services';
import { startCommand, type Proc } from '../helpers/processes';
import { insertJob, insertRun, jobRow, ResultPublisher, runRow } from '../helpers/results';

/**
 * The real runner and the real results consumer together: a runner killed
 * with SIGKILL in the middle of a run stops sending heartbeats, and the
 * run is marked lost within the limit (CRONQ_LOST_AFTER_SECONDS=2).
 */

let tdb: TestDatabase;
let vhost: TestVhost;
let results: Proc | undefined;
let runner: Proc | undefined;
let tmp: string;

before(async () => {
  [tdb, vhost] = await Promise.all([createTestDatabase(), createTestVhost()]);
  tmp = mkdtempSync(path.join(tmpdir(), 'cronq-results-runner-'));
});

after(async () => {
  runner?.kill('SIGKILL');
  await results?.stop();
  // The job's shell outlived its SIGKILLed runner: end it.
  try {
    process.kill(Number(readFileSync(path.join(tmp, 'job.pid'), 'utf8').trim()), 'SIGKILL');
  } catch {
    // Already gone.
  }
  // Unset when the setup failed before making it.
  if (tmp) rmSync(tmp, { recursive: true, force: true });
  await vhost?.drop();
  await tdb?.drop();
});

test('a runner killed with SIGKILL during a run: the run is marked lost within the limit', async () => {
  results = startCommand('cronq-results', {
    env: { DATABASE_URL: tdb.url, RABBITMQ_URL: vhost.url, CRONQ_LOST_AFTER_SECONDS: '2' },
  });
  await (await ResultPublisher.open(await vhost.connect())).waitForConsumers(1, 40_000);
  runner = startCommand('cronq-runner', {
    env: {
      RABBITMQ_URL: vhost.url,
      CRONQ_HEARTBEAT_SECONDS: '0.5',
      LOG_PATH: tmp,
      CRONQ_RESULT_BUFFER_PATH: path.join(tmp, 'buffer'),
      CRONQ_HOSTNAME: 'doomed-runner',
    },
  });

  const jobId = await insertJob(tdb.db, 'long job');
  const runId = await insertRun(tdb.db, jobId);
  const conn = await vhost.connect();
  const ch = await conn.createConfirmChannel();
  await declareJobQueue(ch, DEFAULT_JOB_QUEUE);
  const command = `echo $$ > ${path.join(tmp, 'job.pid')}; exec sleep 60`;
  const msg = buildJobMessage({
    runId,
    jobId,
    name: 'long job',
    command,
    timeoutSeconds: null,
    scheduledFor: new Date(),
    trigger: 'manual',
  });
  ch.publish(EXCHANGE, routingKeyForQueue(DEFAULT_JOB_QUEUE), Buffer.from(JSON.stringify(msg)), {
    persistent: true,
  });
  await ch.waitForConfirms();

  const running = await waitFor(
    async () => {
      const r = await runRow(tdb.db, runId);
      return r?.status === 'running' ? r : undefined;
    },
    { timeoutMs: 20_000, message: 'the runner started the run' },
  );
  assert.equal(running.host, 'doomed-runner');
  // Alive for longer than the limit: the runner's heartbeats keep it running.
  await new Promise((r) => setTimeout(r, 3000));
  const alive = (await runRow(tdb.db, runId))!;
  assert.equal(alive.status, 'running', 'heartbeats keep a live run from being marked lost');
  assert.ok(
    alive.heartbeat_at!.getTime() > running.heartbeat_at!.getTime(),
    'heartbeat_at advances',
  );

  runner.kill('SIGKILL');
  await runner.exited;
  const killedAt = Date.now();
  const lost = await waitFor(
    async () => {
      const r = await runRow(tdb.db, runId);
      return r?.status === 'lost' ? r : undefined;
    },
    { timeoutMs: 15_000, message: 'the run is marked lost' },
  );
  const tookMs = Date.now() - killedAt;
  // Limit 2 s, minus up to one heartbeat interval, plus one sweep interval
  // (0.5 s ± 25%) and slack for this busy shared machine.
  assert.ok(tookMs > 1000, `not before the limit (${tookMs} ms)`);
  assert.ok(tookMs < 2000 + 625 + 4000, `marked lost ${tookMs} ms after the kill (limit 2 s)`);
  assert.match(lost.reason ?? '', /^no heartbeat from doomed-runner for \d+ s$/);
  assert.equal((await jobRow(tdb.db, jobId))!.current_status, 'lost');
});
