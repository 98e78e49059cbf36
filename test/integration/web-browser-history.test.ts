import { launchChromium } from '../helpers/browser';
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { type Browser } from 'playwright-core';
import { createTestDatabase, type TestDatabase } from '../helpers/services';
import { ROOT } from '../helpers/processes';
import { startTestWeb, type TestWeb } from '../helpers/web';
import { newRunId } from '../../src/core/runs';

/**
 * A job's history on its page, in a real browser at desktop width and at
 * 390 px: the duration chart (one bar per run that ran, coloured by its
 * status), the success rate, the runs paged and filtered by status, and
 * the job's definition as its category file holds it, with a Copy button.
 */

const ARTIFACTS = path.join(ROOT, 'test-artifacts');
let tdb: TestDatabase;
let web: TestWeb;
let browser: Browser;
let jobId: number;
const JOB = {
  name: 'nightly-export',
  schedule: '30 2 * * *',
  command: '/opt/export --all && gzip -9 /var/export/*.csv',
  routing_key: 'reports',
  timeout: 600,
  overlap: 'forbid',
  retries: { max: 2, delay: 'PT1M' },
};

before(async () => {
  mkdirSync(ARTIFACTS, { recursive: true });
  tdb = await createTestDatabase();
  web = await startTestWeb(tdb.db, tdb.url);
  browser = await launchChromium();
  const res = await fetch(`${web.url}/api/category/reports`, {
    method: 'PUT',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ jobs: [JOB] }),
  });
  assert.equal(res.status, 200, await res.text());
  jobId = ((await tdb.db('jobs').where('name', JOB.name).first('id')) as { id: number }).id;
  // 60 runs, one a minute, oldest first: every 5th failed, every 12th timed out, the rest succeeded;
  // run i took i seconds, so the newest are the longest.
  const t0 = Date.now() - 61 * 60_000;
  const rows = Array.from({ length: 60 }, (_, i) => {
    const at = new Date(t0 + i * 60_000);
    const status = i % 12 === 11 ? 'timed_out' : i % 5 === 4 ? 'failed' : 'succeeded';
    return {
      run_id: newRunId(),
      job_id: jobId,
      job_name: JOB.name,
      scheduled_for: at,
      status,
      queued_at: at,
      started_at: at,
      finished_at: new Date(at.getTime() + (i + 1) * 1000),
      run_time: i + 1,
      return_code: status === 'succeeded' ? 0 : status === 'failed' ? 1 : null,
    };
  });
  await tdb.db('runs').insert(rows);
});

after(async () => {
  await browser?.close();
  await web?.stop();
  await tdb?.drop();
});

for (const { label, width, height } of [
  { label: 'desktop', width: 1400, height: 900 },
  { label: 'phone', width: 390, height: 844 },
]) {
  test(`in a browser (${label}, ${width} px): the duration chart, the success rate, runs paged and filtered`, async () => {
    const context = await browser.newContext({ viewport: { width, height } });
    const page = await context.newPage();
    const problems: string[] = [];
    page.on('pageerror', (e) => problems.push(e.message));
    await page.goto(`${web.url}/job/${jobId}`);

    // The newest 50 runs are i = 10..59: 5 timed out (i % 12 == 11), 9 failed (i % 5 == 4, but not 59), 36 succeeded.
    const bars = page.locator('#history svg.bars rect');
    assert.equal(await bars.count(), 50);
    assert.equal(await page.locator('#history svg.bars rect.st-failed').count(), 9);
    assert.equal(await page.locator('#history svg.bars rect.st-timed_out').count(), 5);
    assert.match(
      await page.locator('#success-rate').innerText(),
      /^72 % succeeded \(36 succeeded, 9 failed, 5 timed out\)$/,
    );
    // Oldest on the left, tallest (the newest, i = 59: timed out after 60 s) on the right at full height.
    const last = bars.last();
    assert.equal(await last.getAttribute('height'), '100');
    assert.match((await last.locator('title').textContent()) ?? '', /^timed out · 1 min ·/);
    const box = await page.locator('#history svg.bars').boundingBox();
    assert.ok(box && box.width > 100 && box.x + box.width <= width, 'the chart fits');
    await page.locator('#history').screenshot({
      path: path.join(ARTIFACTS, `web-job-history-${label}.png`),
    });

    // 50 runs a page, newest first; the rest on page 2.
    assert.equal(await page.locator('#runs tbody tr[data-run-id]').count(), 50);
    await Promise.all([page.waitForURL(/runs_page=2/), page.click('.pager a:has-text("Older")')]);
    assert.equal(await page.locator('#runs tbody tr[data-run-id]').count(), 10);
    assert.equal(await page.locator('#history svg.bars rect').count(), 50, 'the chart stays');

    // Only the failed ones.
    await page.goto(`${web.url}/job/${jobId}`);
    await Promise.all([
      page.waitForURL(/runs_status=failed/),
      page.click('nav[aria-label="Runs by status"] a:has-text("failed")'),
    ]);
    const statuses = await page
      .locator('#runs tbody tr[data-run-id]')
      .evaluateAll((rows) => rows.map((r) => r.getAttribute('data-status')));
    assert.equal(statuses.length, 11, '11 of the 60 runs failed');
    assert.ok(statuses.every((s) => s === 'failed'));
    // The live refresh leaves a filtered table as asked.
    await page.waitForTimeout(3500);
    assert.equal(await page.locator('#runs tbody tr[data-run-id]').count(), 11);

    const scroll = (await page.evaluate('document.documentElement.scrollWidth')) as number;
    assert.ok(scroll <= width, `the page is ${scroll} px wide at ${width} px`);
    assert.deepEqual(problems, []);
    await context.close();
  });
}

test('in a browser: the definition reads as its category file and the Copy button copies it', async () => {
  const context = await browser.newContext({ viewport: { width: 1400, height: 900 } });
  await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: web.url });
  const page = await context.newPage();
  await page.goto(`${web.url}/job/${jobId}`);
  const shown = JSON.parse(await page.locator('#definition-json').innerText()) as unknown;
  assert.deepEqual(shown, JOB);
  await page.click('button[data-copy="definition-json"]');
  await page.locator('button[data-copy="definition-json"]:has-text("Copied")').waitFor();
  const copied = (await page.evaluate('navigator.clipboard.readText()')) as string;
  assert.deepEqual(JSON.parse(copied), JOB);
  await context.close();
});

test('a bad runs_status or runs_page on a job page answers 400', async () => {
  for (const q of ['runs_status=exploded', 'runs_page=0', 'runs_page=abc', 'runs_page=1001']) {
    const res = await fetch(`${web.url}/job/${jobId}?${q}`);
    assert.equal(res.status, 400, q);
  }
});
