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
import { ResultPublisher } from '../helpers/results';
import { startTestWeb, type TestWeb } from '../helpers/web';
import { parseCategory } from '../../src/core/category';
import { applyCategory } from '../../src/web/category-store';
import { GLOBAL_TARGETS_SETTING } from '../../src/core/notify/shown-targets';

/**
 * The job page shows the targets every job notifies (CRONQ_NOTIFY_* of
 * cronq-results), which the web does not have: a real cronq-results records
 * them in `settings` when it starts, a real web reads them. The webhook's
 * path and query (where Slack-style URLs keep their secret) never reach the
 * database or the page.
 */

const WEBHOOK = 'https://hooks.example.com/services/T0/SECRETPATH?token=QUERYSECRET';
let tdb: TestDatabase;
let vhost: TestVhost;
let pub: ResultPublisher;
let web: TestWeb;
let consumer: Proc | undefined;
let jobId: number;

/** Start cronq-results and wait until it consumes: by then it has recorded its targets. */
async function startConsumer(env: Record<string, string>): Promise<void> {
  consumer = startCommand('cronq-results', {
    env: { DATABASE_URL: tdb.url, RABBITMQ_URL: vhost.url, ...env },
  });
  await pub.waitForConsumers(1, 40_000);
}

async function stopConsumer(): Promise<void> {
  const exit = await consumer?.stop();
  assert.equal(exit?.code, 0, 'cronq-results exits 0 on SIGTERM');
  assert.doesNotMatch(consumer!.output(), /SECRETPATH|QUERYSECRET|SMTPPASSWORD/, 'never logged');
  consumer = undefined;
  await waitFor(async () => (await pub.consumers()) === 0, { message: 'the consumer is gone' });
}

async function stored(): Promise<{ value: string; updated_at: Date } | undefined> {
  return (await tdb.db('settings').where('name', GLOBAL_TARGETS_SETTING).first()) as
    { value: string; updated_at: Date } | undefined;
}

async function jobPage(): Promise<string> {
  const res = await fetch(`${web.url}/job/${jobId}`);
  assert.equal(res.status, 200);
  return res.text();
}

/** The job page once `ok` holds for it (the web caches the targets a few seconds). */
async function pageWhen(ok: (page: string) => boolean, message: string): Promise<string> {
  let page = '';
  await waitFor(async () => ok((page = await jobPage())), { timeoutMs: 20_000, message });
  return page;
}

/** The rows of the job page's targets table. */
function targetRows(page: string): string[] {
  const table = page.slice(
    page.indexOf('id="notify-targets"'),
    page.indexOf('</table>', page.indexOf('id="notify-targets"')),
  );
  return table.split('<tr').filter((r) => r.includes('data-scope='));
}

before(async () => {
  [tdb, vhost] = await Promise.all([createTestDatabase(), createTestVhost()]);
  pub = await ResultPublisher.open(await vhost.connect());
  await applyCategory(
    tdb.db,
    'nightly',
    parseCategory(
      {
        category: 'nightly',
        notify: [{ on: ['failed'], email: ['team@example.com'] }],
        jobs: [{ name: 'backup', schedule: 'R/2024-01-01T00:00:00Z/PT1H', command: 'true' }],
      },
      'nightly',
    ),
  );
  jobId = Number(((await tdb.db('jobs').where('name', 'backup').first()) as { id: number }).id);
  web = await startTestWeb(tdb.db, tdb.url);
});

after(async () => {
  await consumer?.stop();
  await web?.stop();
  await vhost?.drop();
  await tdb?.drop();
});

describe('the job page shows the targets for every job, as cronq-results recorded them', () => {
  test("before any cronq-results recorded them, the page says so and shows only the category's", async () => {
    const page = await jobPage();
    const rows = targetRows(page);
    assert.equal(rows.length, 1);
    assert.match(rows[0]!, /data-scope="category"[\s\S]*e-mail team@example\.com/);
    assert.match(page, /No cronq-results has recorded its targets for every job yet/);
  });

  test("CRONQ_NOTIFY_WEBHOOK and CRONQ_NOTIFY_EMAIL are shown as every job's, the webhook by its origin only, with the events they fire on", async () => {
    await startConsumer({
      CRONQ_NOTIFY_WEBHOOK: WEBHOOK,
      CRONQ_NOTIFY_WEBHOOK_FORMAT: 'slack',
      CRONQ_NOTIFY_EMAIL: 'ops@example.com',
      CRONQ_SMTP_URL: 'smtp://user:SMTPPASSWORD@127.0.0.1:2525',
      CRONQ_NOTIFY_ON: 'failed,recovered',
      CRONQ_NOTIFY_REPEAT_AFTER: 'PT4H',
    });
    const row = await stored();
    assert.ok(row, 'recorded at start');
    for (const secret of ['SECRETPATH', 'QUERYSECRET', 'services', 'SMTPPASSWORD'])
      assert.ok(!row.value.includes(secret), `${secret} is not stored`);

    const page = await pageWhen(
      (p) => targetRows(p).some((r) => r.includes('data-scope="global"')),
      'the global targets on the job page',
    );
    const global = targetRows(page).filter((r) => r.includes('data-scope="global"'));
    assert.equal(global.length, 2);
    assert.match(global[0]!, /webhook https:\/\/hooks\.example\.com\/…/);
    assert.match(global[0]!, /\(slack\)/);
    assert.match(global[0]!, /\(every job\)/);
    assert.match(global[0]!, /<td>failed, recovered<\/td>/);
    assert.match(global[0]!, /4 h/);
    assert.match(global[1]!, /e-mail ops@example\.com[\s\S]*\(every job\)/);
    assert.ok(
      targetRows(page).some((r) => /data-scope="category"[\s\S]*team@example\.com/.test(r)),
    );
    for (const secret of ['SECRETPATH', 'QUERYSECRET', '/services', 'SMTPPASSWORD'])
      assert.ok(!page.includes(secret), `${secret} is never on the page`);
    assert.match(page, /id="notify-every-job"[\s\S]*the last one started wins/);
  });

  test('a restart with the same settings does not write them again', async () => {
    const before = await stored();
    await stopConsumer();
    await startConsumer({
      CRONQ_NOTIFY_WEBHOOK: WEBHOOK,
      CRONQ_NOTIFY_WEBHOOK_FORMAT: 'slack',
      CRONQ_NOTIFY_EMAIL: 'ops@example.com',
      CRONQ_SMTP_URL: 'smtp://127.0.0.1:2525',
      CRONQ_NOTIFY_ON: 'failed,recovered',
      CRONQ_NOTIFY_REPEAT_AFTER: 'PT4H',
    });
    const now = await stored();
    assert.equal(now?.value, before?.value);
    assert.equal(now?.updated_at.getTime(), before?.updated_at.getTime());
  });

  test('after a restart without them, the page no longer shows them', async () => {
    await stopConsumer();
    await startConsumer({});
    assert.equal((await stored())?.value, '[]', 'an empty list is recorded');
    const page = await pageWhen(
      (p) => !targetRows(p).some((r) => r.includes('data-scope="global"')),
      'the global targets gone from the job page',
    );
    assert.ok(!page.includes('hooks.example.com'));
    assert.ok(!page.includes('ops@example.com'));
    assert.equal(targetRows(page).length, 1, "the category's target stays");
    assert.match(page, /Targets for every job: the <code>CRONQ_NOTIFY_\*<\/code> settings/);
  });

  test('a stored value is escaped and bounded on the page, whoever wrote it', async () => {
    await stopConsumer();
    await tdb
      .db('settings')
      .where('name', GLOBAL_TARGETS_SETTING)
      .update({
        value: JSON.stringify([
          {
            label: '<script>alert(1)</script>',
            on: ['failed', '<b>x</b>'],
            format: 'slack',
            repeat_after_ms: 60_000,
          },
          ...Array.from({ length: 20 }, (_, i) => ({
            label: `extra ${i}`,
            on: [],
            format: null,
            repeat_after_ms: 1,
          })),
        ]),
      });
    const page = await pageWhen(
      (p) => p.includes('alert(1)'),
      'the hand-written value on the page',
    );
    assert.ok(!page.includes('<script>alert(1)'), 'the label is escaped');
    assert.ok(page.includes('&lt;script&gt;alert(1)&lt;/script&gt;'));
    assert.ok(
      !page.includes('<b>x</b>') && !page.includes('&lt;b&gt;x'),
      'unknown events are dropped',
    );
    const global = targetRows(page).filter((r) => r.includes('data-scope="global"'));
    assert.equal(global.length, 10, 'at most 10 targets are shown');
  });
});
