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
import { startReceiver, startSmtp, type Receiver, type SmtpSink } from '../helpers/notify';
import { parseCategory } from '../../src/core/category';
import { applyCategory } from '../../src/web/category-store';
import { startTestWeb } from '../helpers/web';

/**
 * Notifications end to end: a real cronq-results process, a webhook
 * receiver and an SMTP server started here, result messages published as a
 * runner sends them. No injector and no runner run in this file (so the
 * overdue test also shows the switch needs neither).
 */

const SECRET = 'test-webhook-secret-0123456789';
let tdb: TestDatabase;
let vhost: TestVhost;
let consumer: Proc;
let pub: ResultPublisher;
let hook: Receiver;
let smtp: SmtpSink;

async function category(name: string, doc: Record<string, unknown>): Promise<Map<string, number>> {
  await applyCategory(tdb.db, name, parseCategory({ category: name, ...doc }, name));
  const rows = (await tdb
    .db('jobs')
    .join('categories', 'categories.id', 'jobs.category_id')
    .where('categories.name', name)
    .select('jobs.id', 'jobs.name')) as Array<{ id: number; name: string }>;
  return new Map(rows.map((r) => [r.name, Number(r.id)]));
}

const job = (name: string, extra: Record<string, unknown> = {}) => ({
  name,
  schedule: 'R/2024-01-01T00:00:00Z/PT1H',
  command: 'false',
  ...extra,
});

/** A run of `jobId` that ends with `status` (a queued row first, as the injector writes it). */
async function finish(jobId: number, status: 'failed' | 'succeeded', output = 'oops\n') {
  const runId = await insertRun(tdb.db, jobId);
  await pub.publish(
    resultMessage('finished', jobId, runId, {
      status,
      return_code: status === 'failed' ? 3 : 0,
      output,
    }),
  );
  return runId;
}

async function notificationsOf(jobId: number) {
  return tdb.db('notifications').where({ job_id: jobId }).orderBy('id');
}

before(async () => {
  [tdb, vhost, hook, smtp] = await Promise.all([
    createTestDatabase(),
    createTestVhost(),
    startReceiver(SECRET),
    startSmtp(),
  ]);
  pub = await ResultPublisher.open(await vhost.connect());
  consumer = startCommand('cronq-results', {
    env: {
      DATABASE_URL: tdb.url,
      RABBITMQ_URL: vhost.url,
      CRONQ_RESULTS_FLUSH_MS: '20',
      CRONQ_WEBHOOK_SECRET: SECRET,
      CRONQ_PUBLIC_URL: 'https://cronq.example.com/',
      CRONQ_SMTP_URL: smtp.url,
      CRONQ_MAIL_FROM: 'cronq@example.com',
      CRONQ_NOTIFY_POLL_MS: '100',
      CRONQ_NOTIFY_RETRY_BASE_MS: '200',
      CRONQ_OVERDUE_CHECK_MS: '200',
    },
  });
  await pub.waitForConsumers(1, 40_000);
});

after(async () => {
  const exit = await consumer?.stop();
  await Promise.all([vhost?.drop(), hook?.close(), smtp?.close()]);
  await tdb?.drop();
  assert.equal(exit?.code, 0, 'cronq-results exits 0 on SIGTERM');
  assert.doesNotMatch(consumer.output(), new RegExp(SECRET), 'the webhook secret is never logged');
});

describe('notifications', () => {
  test('a failure is POSTed signed, with the job, the run, the output tail and links; repeats are held back; a success sends recovered once', async () => {
    const ids = await category('signed', {
      notify: [{ webhook: `${hook.url}/signed`, format: 'slack', on: ['failed', 'recovered'] }],
      jobs: [job('nightly backup')],
    });
    const jobId = ids.get('nightly backup')!;
    const longOutput = `${'x'.repeat(10_000)}\nthe end é\n`;
    const runId = await finish(jobId, 'failed', longOutput);
    const first = await waitFor(() => hook.received.find((r) => r.path === '/signed'), {
      timeoutMs: 15_000,
      message: 'the failure notification',
    });
    assert.equal(first.signed, true, 'the signature checks out with the secret');
    assert.match(String(first.headers['x-cronq-signature']), /^v1=[0-9a-f]{64}$/);
    const b = first.json;
    assert.equal(b.event, 'failed');
    assert.deepEqual(
      { id: b.job.id, category: b.job.category, name: b.job.name, url: b.job.url },
      {
        id: jobId,
        category: 'signed',
        name: 'nightly backup',
        url: `https://cronq.example.com/job/${jobId}`,
      },
    );
    assert.ok(b.run);
    assert.equal(b.run.id, runId);
    assert.equal(b.run.status, 'failed');
    assert.equal(b.run.return_code, 3);
    assert.equal(b.run.host, 'host-a.example.com');
    assert.equal(b.run.url, `https://cronq.example.com/run/${runId}`);
    assert.ok(Buffer.byteLength(b.output_tail ?? '') <= 4096, 'at most 4 KiB of output');
    assert.ok(b.output_tail?.endsWith('the end é\n'), 'the tail of the output');
    assert.match(b.text ?? '', /nightly backup failed/, 'a Slack-compatible text');
    // A body changed in transit no longer matches its signature.
    const tampered = first.body.replace('"failed"', '"succeeded"');
    const { verifyBody } = await import('../../src/core/notify/signature');
    assert.equal(
      verifyBody(
        SECRET,
        String(first.headers['x-cronq-timestamp']),
        tampered,
        String(first.headers['x-cronq-signature']),
        Math.floor(Date.now() / 1000),
      ),
      false,
    );

    // The second failure within repeat_after (default PT1H) is counted, not sent.
    await finish(jobId, 'failed');
    await waitFor(
      async () =>
        Number((await tdb.db('jobs').where({ id: jobId }).first()).failures) === 2 || undefined,
      { message: 'the second failure counted' },
    );
    await finish(jobId, 'succeeded');
    const recovered = await waitFor(
      () => hook.received.find((r) => r.path === '/signed' && r.json.event === 'recovered'),
      { timeoutMs: 15_000, message: 'recovered' },
    );
    assert.equal(recovered.json.failures, 2, 'recovered says how many failures it ends');
    await finish(jobId, 'succeeded');
    await new Promise((r) => setTimeout(r, 1000));
    assert.deepEqual(
      hook.received.filter((r) => r.path === '/signed').map((r) => r.json.event),
      ['failed', 'recovered'],
      'one failure notice and one recovered, nothing for the held-back failure or the second success',
    );
    const row = (await tdb.db('jobs').where({ id: jobId }).first()) as Record<string, unknown>;
    assert.equal(row.failing_since, null);
    assert.equal(row.failures, 0);
  });

  test('e-mail goes over SMTP in plain text, with the same facts and links', async () => {
    const ids = await category('mailed', {
      notify: [{ on: ['failed'], email: ['ops@example.com', 'dev@example.com'] }],
      jobs: [job('report')],
    });
    const jobId = ids.get('report')!;
    const runId = await finish(jobId, 'failed', 'disk full\n');
    const mail = await waitFor(() => smtp.mails[0], { timeoutMs: 15_000, message: 'a mail' });
    assert.equal(mail.from, 'cronq@example.com');
    assert.deepEqual(mail.to.sort(), ['dev@example.com', 'ops@example.com']);
    assert.match(mail.raw, /Subject: CronQ: mailed\/report failed/);
    assert.match(mail.raw, /Content-Type: text\/plain/i);
    assert.match(mail.raw, new RegExp(`https://cronq.example.com/run/${runId}`));
    assert.match(mail.raw, /Return code: 3/);
    assert.match(mail.raw, /disk full/);
  });

  test('a receiver that answers 500 three times, then 200, gets the notification once, with four attempts recorded', async () => {
    hook.respond('/flaky', (n) => (n < 3 ? 500 : 200));
    const ids = await category('flaky', {
      notify: [{ on: ['failed'], webhook: `${hook.url}/flaky` }],
      jobs: [job('sync')],
    });
    const jobId = ids.get('sync')!;
    await finish(jobId, 'failed');
    const [n] = await waitFor(
      async () => {
        const rows = await notificationsOf(jobId);
        return rows[0]?.state === 'sent' ? rows : undefined;
      },
      { timeoutMs: 30_000, message: 'the notification sent' },
    );
    const attempts = await tdb
      .db('notification_attempts')
      .where({ notification_id: n.id })
      .orderBy('id');
    assert.deepEqual(
      attempts.map((a) => a.status_code),
      [500, 500, 500, 200],
    );
    assert.equal(n.attempts, 4);
    const got = hook.received.filter((r) => r.path === '/flaky');
    assert.equal(got.filter((r) => r.status === 200).length, 1, 'accepted once');
    assert.equal(new Set(got.map((r) => r.headers['x-cronq-delivery'])).size, 1, 'one delivery id');
  });

  test('overdue fires from the database clock with no injector or runner running, and a success sends recovered', async () => {
    const ids = await category('watched', {
      notify: [{ on: ['overdue', 'recovered'], webhook: `${hook.url}/overdue` }],
      jobs: [job('heartbeat', { alert_after: 'PT2S' })],
    });
    const jobId = ids.get('heartbeat')!;
    const overdue = await waitFor(
      () => hook.received.find((r) => r.path === '/overdue' && r.json.event === 'overdue'),
      { timeoutMs: 20_000, message: 'the overdue notification' },
    );
    assert.equal(overdue.json.job.id, jobId);
    assert.equal(overdue.json.overdue?.alert_after_seconds, 2);
    assert.ok((await tdb.db('jobs').where({ id: jobId }).first()).overdue_since !== null);
    await finish(jobId, 'succeeded');
    await waitFor(
      () => hook.received.find((r) => r.path === '/overdue' && r.json.event === 'recovered'),
      { timeoutMs: 15_000, message: 'recovered after overdue' },
    );
    assert.equal(
      hook.received.filter((r) => r.path === '/overdue' && r.json.event === 'overdue').length,
      1,
      'overdue is sent once, not on every check',
    );
  });

  test('with retries, only the final failure of a chain notifies; a target listing retry hears of each retry', async () => {
    const ids = await category('retrying', {
      notify: [
        { on: ['failed'], webhook: `${hook.url}/final` },
        { on: ['retry'], webhook: `${hook.url}/retry` },
      ],
      jobs: [job('flappy', { retries: { max: 1, delay: 'PT1S' } })],
    });
    const jobId = ids.get('flappy')!;
    await finish(jobId, 'failed');
    const retryRun = await waitFor(
      async () => tdb.db('runs').where({ job_id: jobId, triggered_by: 'retry' }).first(),
      { message: 'the retry run' },
    );
    await waitFor(() => hook.received.find((r) => r.path === '/retry'), {
      timeoutMs: 15_000,
      message: 'the retry notification',
    });
    assert.equal(hook.received.filter((r) => r.path === '/final').length, 0);
    // The retry, the last attempt, fails: that one is final and notifies.
    await pub.publish(
      resultMessage('finished', jobId, retryRun.run_id, { status: 'failed', return_code: 1 }),
    );
    const final = await waitFor(() => hook.received.find((r) => r.path === '/final'), {
      timeoutMs: 15_000,
      message: 'the final failure',
    });
    assert.equal(final.json.run?.id, retryRun.run_id);
    assert.equal(final.json.run?.attempt, 2);
  });

  test("the admin shows a job's targets and last deliveries, a run's attempts, and overdue and failing jobs on /failures", async () => {
    hook.respond('/shown', (n) => (n < 1 ? 503 : 200));
    const ids = await category('shown', {
      notify: [{ on: ['failed'], webhook: `${hook.url}/shown/T0/SECRETPATH`, format: 'slack' }],
      jobs: [job('visible', { alert_after: 'PT1S' })],
    });
    const jobId = ids.get('visible')!;
    hook.respond('/shown/T0/SECRETPATH', (n) => (n < 1 ? 503 : 200));
    const runId = await finish(jobId, 'failed');
    await waitFor(
      async () =>
        (await notificationsOf(jobId)).find((n) => n.state === 'sent' && n.run_id === runId),
      { timeoutMs: 20_000, message: 'sent after one 503' },
    );
    await waitFor(async () => (await tdb.db('jobs').where({ id: jobId }).first()).overdue_since, {
      timeoutMs: 20_000,
      message: 'overdue',
    });
    const web = await startTestWeb(tdb.db, tdb.url);
    try {
      const jobPage = await (await fetch(`${web.url}/job/${jobId}`)).text();
      assert.match(jobPage, /id="notify-targets"[\s\S]*webhook http:\/\/127\.0\.0\.1:\d+\/…/);
      assert.doesNotMatch(jobPage, /SECRETPATH/, 'a webhook path is never shown');
      assert.match(jobPage, /id="notify-deliveries"[\s\S]*data-state="sent"/);
      assert.match(jobPage, /data-overdue/);
      assert.match(jobPage, /Failing since/);
      const runPage = await (await fetch(`${web.url}/run/${runId}`)).text();
      const attempts = runPage.slice(runPage.indexOf('id="notify-attempts"'));
      assert.match(attempts, /HTTP 503/);
      assert.match(attempts, />200</);
      const failures = await (await fetch(`${web.url}/failures`)).text();
      const overdue = failures.slice(
        failures.indexOf('id="overdue"'),
        failures.indexOf('id="failing"'),
      );
      assert.match(overdue, new RegExp(`data-job-id="${jobId}"`));
      const failing = failures.slice(failures.indexOf('id="failing"'));
      assert.match(failing, new RegExp(`data-job-id="${jobId}"`));

      // The dry run and the PUT say when a category's targets change, and where they send.
      const put = (query: string, notify: unknown) =>
        fetch(`${web.url}/api/category/shown${query}`, {
          method: 'PUT',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ notify, jobs: [job('visible', { alert_after: 'PT1S' })] }),
        });
      const same = (await (
        await put('?dry_run=1', [
          { on: ['failed'], webhook: `${hook.url}/shown/T0/SECRETPATH`, format: 'slack' },
        ])
      ).json()) as Record<string, unknown>;
      assert.equal(same.notify_changed, undefined, 'unchanged targets: the answer is as before');
      const plan = (await (
        await put('?dry_run=1', [{ on: ['failed'], email: ['ops@example.com'] }])
      ).json()) as Record<string, unknown>;
      assert.equal(plan.status, 'dry_run');
      assert.equal(plan.notify_changed, true);
      assert.deepEqual(plan.notify, ['e-mail ops@example.com']);
      const refused = await put('', [{ on: ['failed'], webhook: 'javascript:alert(1)' }]);
      assert.equal(refused.status, 400);
      assert.match(await refused.text(), /notify\[0\]\.webhook/);
      const cat = await tdb.db('categories').where({ name: 'shown' }).first();
      assert.match(cat.notify, /SECRETPATH/, 'a refused PUT changed nothing');
    } finally {
      await web.stop();
    }
  });
});
