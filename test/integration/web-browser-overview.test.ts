import { launchChromium } from '../helpers/browser';
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { type Browser, type Page, type Locator } from 'playwright-core';
import { createTestDatabase, type TestDatabase } from '../helpers/services';
import { ROOT } from '../helpers/processes';
import { startTestWeb, type TestWeb } from '../helpers/web';
import { newRunId } from '../../src/core/runs';
import { refreshJobStatus } from '../../src/results/job-status';

/**
 * The overview of `/` in a real browser (Debian's headless Chromium), at
 * desktop width and at 390 px: the status chips count and filter, "failing
 * first" lists failures across categories, and the live refresh keeps
 * "Next run" and the history dots true without a reload. Runs are written
 * as the results consumer writes them (its refreshJobStatus keeps the
 * job's status columns), so the chips read what production would.
 * Screenshots go to test-artifacts/.
 */

const ARTIFACTS = path.join(ROOT, 'test-artifacts');
let tdb: TestDatabase;
let web: TestWeb;
let browser: Browser;
const ids: Record<string, number> = {};

async function putCategory(name: string, jobs: string[]): Promise<void> {
  const res = await fetch(`${web.url}/api/category/${name}`, {
    method: 'PUT',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      jobs: jobs.map((j) => ({ name: j, schedule: '0 3 * * *', command: `run-${j}` })),
    }),
  });
  assert.equal(res.status, 200, await res.text());
}

/** A run of `job`, `agoMs` before now, as the results consumer leaves it. */
async function run(job: string, status: string, agoMs: number): Promise<void> {
  const at = Date.now() - agoMs;
  const runId = newRunId();
  await tdb.db('runs').insert({
    run_id: runId,
    job_id: ids[job],
    job_name: job,
    scheduled_for: new Date(at),
    status,
    queued_at: new Date(at),
    started_at: new Date(at + 100),
    finished_at: status === 'running' ? null : new Date(at + 1000),
    return_code: status === 'succeeded' ? 0 : status === 'failed' ? 1 : null,
  });
  await refreshJobStatus(tdb.db, [runId]);
}

before(async () => {
  mkdirSync(ARTIFACTS, { recursive: true });
  tdb = await createTestDatabase();
  web = await startTestWeb(tdb.db, tdb.url);
  browser = await launchChromium();
  await putCategory('ops', ['backup', 'rotate-logs', 'report', 'fresh', 'vacuum', 'indexer']);
  await putCategory('etl', ['load-orders']);
  for (const r of (await tdb.db('jobs').select('id', 'name')) as Array<{
    id: number;
    name: string;
  }>)
    ids[r.name] = r.id;
  await run('backup', 'succeeded', 600_000);
  await run('backup', 'failed', 300_000); // failing, the older failure
  await run('rotate-logs', 'succeeded', 200_000);
  await run('report', 'timed_out', 100_000);
  await run('indexer', 'running', 5_000);
  await run('load-orders', 'failed', 60_000); // failing, the latest failure, another category
  await run('vacuum', 'succeeded', 50_000);
  await tdb.db('jobs').where('id', ids.vacuum).update({ paused_at: new Date(), paused_by: 'test' });
  // fresh: never run.
});

after(async () => {
  await browser?.close();
  await web?.stop();
  await tdb?.drop();
});

async function jobNames(page: Page): Promise<string[]> {
  return page.locator('table.jobs tr[data-job-id] a.jobname').allInnerTexts();
}

async function fitsWidth(page: Page, width: number): Promise<void> {
  const scroll = (await page.evaluate('document.documentElement.scrollWidth')) as number;
  assert.ok(scroll <= width, `the page is ${scroll} px wide at a ${width} px viewport`);
}

for (const { label, width, height } of [
  { label: 'desktop', width: 1400, height: 900 },
  { label: 'phone', width: 390, height: 844 },
]) {
  test(`in a browser (${label}, ${width} px): the status chips count and filter, failing first crosses categories`, async () => {
    const page = await browser.newPage({ viewport: { width, height } });
    const problems: string[] = [];
    page.on('pageerror', (e) => problems.push(e.message));
    await page.goto(`${web.url}/`);
    const chip = (key: string) => page.locator(`.overview a[data-chip="${key}"]`);
    const counts: Record<string, string> = {};
    for (const key of ['all', 'failed', 'timed_out', 'lost', 'running', 'never', 'paused'])
      counts[key] = await chip(key).locator('b').innerText();
    assert.deepEqual(counts, {
      all: '7',
      failed: '2',
      timed_out: '1',
      lost: '0',
      running: '1',
      never: '1',
      paused: '1',
    });
    await fitsWidth(page, width);
    await page.screenshot({
      path: path.join(ARTIFACTS, `web-overview-${label}.png`),
      fullPage: true,
    });

    await Promise.all([page.waitForURL(/\?status=failed$/), chip('failed').click()]);
    assert.deepEqual((await jobNames(page)).sort(), ['backup', 'load-orders']);
    assert.equal(await chip('failed').getAttribute('aria-current'), 'true');
    await Promise.all([page.waitForURL(/\?status=never$/), chip('never').click()]);
    assert.deepEqual(await jobNames(page), ['fresh']);
    await Promise.all([page.waitForURL(/\?status=paused$/), chip('paused').click()]);
    assert.deepEqual(await jobNames(page), ['vacuum']);

    // Failing first: every job, the latest failure first, whatever its category.
    await page.goto(`${web.url}/`);
    await Promise.all([
      page.waitForURL(/\?sort=failure$/),
      page.locator('.sortby a[data-sort="failure"]').click(),
    ]);
    const names = await jobNames(page);
    assert.deepEqual(names.slice(0, 3), ['load-orders', 'report', 'backup']);
    assert.equal(names.length, 7);
    assert.match(
      await page.locator('table.jobs tr[data-job-id]').first().innerText(),
      /load-orders\s+etl/,
      'a row names its category',
    );
    await fitsWidth(page, width);
    await page.screenshot({
      path: path.join(ARTIFACTS, `web-overview-failing-first-${label}.png`),
      fullPage: true,
    });
    assert.deepEqual(problems, []);
    await page.close();
  });
}

for (const { label, width, height } of [
  { label: 'desktop', width: 1400, height: 900 },
  { label: 'phone', width: 390, height: 844 },
]) {
  test(`in a browser (${label}, ${width} px): "Next run" and the history dots follow the database without a reload`, async () => {
    const page = await browser.newPage({ viewport: { width, height } });
    await page.goto(`${web.url}/?q=rotate-logs`);
    const row = page.locator(`table.jobs tr[data-job-id="${ids['rotate-logs']}"]`);
    const dots = await row.locator('.c-hist .dot').count();
    assert.ok(dots >= 1, 'its runs are dots');
    // The injector moves next_run on once the occurrence is claimed: the page follows.
    const next = new Date(Date.now() + 90_000);
    next.setUTCMilliseconds(0);
    await tdb.db('jobs').where('id', ids['rotate-logs']).update({ next_run: next });
    await row
      .locator(`td.c-next time[datetime="${next.toISOString()}"]`)
      .waitFor({ timeout: 10_000 });
    assert.match(await row.locator('td.c-next').innerText(), /^in 1 min$/);
    assert.equal(await row.locator('td.c-next.late').count(), 0);
    // Not claimed for minutes (no injector): shown late.
    await tdb
      .db('jobs')
      .where('id', ids['rotate-logs'])
      .update({ next_run: new Date(Date.now() - 120_000) });
    await row.locator('td.c-next.late').waitFor({ timeout: 10_000 });
    assert.equal(
      await row.locator('td.c-next').getAttribute('title'),
      'late: no injector has claimed it yet',
    );
    // A new run appears as a new dot, in its status's colour.
    await run('rotate-logs', 'timed_out', 500);
    await row
      .locator('.c-hist .dot.st-timed_out')
      .last()
      .waitFor({ state: 'attached', timeout: 10_000 });
    await waitForCount(row.locator('.c-hist .dot'), Math.min(10, dots + 1));
    await page.close();
  });
}

/** Until `locator` matches `n` elements (the live refresh runs every 2.5 s). */
async function waitForCount(locator: Locator, n: number): Promise<void> {
  for (let i = 0; i < 40 && (await locator.count()) !== n; i++)
    await new Promise((r) => setTimeout(r, 250));
  assert.equal(await locator.count(), n);
}

test('an unknown status or sort on / answers 400 naming the values that exist', async () => {
  for (const [query, want] of [
    ['status=broken', /failed, timed_out, lost, running, never, paused/],
    ['sort=random', /category, failure, next/],
    ['status=failed&status=lost', /status: expected/],
  ] as const) {
    const res = await fetch(`${web.url}/?${query}`);
    assert.equal(res.status, 400, query);
    assert.match(await res.text(), want);
  }
});

test('in a browser: the keyboard gets a skip link first, one tab stop per job, and no focus stolen', async () => {
  const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
  await page.goto(`${web.url}/`);
  assert.equal(
    await page.evaluate('document.activeElement === document.body'),
    true,
    'nothing has the focus when the page opens',
  );
  await page.keyboard.press('Tab');
  assert.equal(await page.evaluate('document.activeElement.className'), 'skip');
  assert.equal(await page.locator('a.skip').isVisible(), true, 'the skip link shows when focused');
  await page.keyboard.press('Enter');
  assert.match(page.url(), /#main$/);
  // Tab through the jobs table: each row is one stop (its name), not its ten history dots.
  // Within the first category's table (the next stop after it is the next category's buttons).
  const rows = await page.locator('table.jobs').first().locator('tr[data-job-id]').count();
  assert.ok(rows >= 5);
  await page.locator('table.jobs tr[data-job-id] a.jobname').first().focus();
  const stops: string[] = [];
  for (let i = 0; i < rows; i++) {
    stops.push(
      (await page.evaluate(
        "document.activeElement.closest('tr[data-job-id]')?.getAttribute('data-job-id') ?? 'outside'",
      )) as string,
    );
    await page.keyboard.press('Tab');
  }
  assert.ok(!stops.includes('outside'), `every stop is in a job row: ${stops.join(', ')}`);
  assert.equal(new Set(stops).size, rows, `one stop per job row: ${stops.join(', ')}`);
  // The dots still say what they show, in words.
  assert.match(
    (await page.locator(`tr[data-job-id="${ids.backup}"] .dots`).getAttribute('aria-label')) ?? '',
    /^last 2 runs, newest last: succeeded, failed$/,
  );
  await page.close();
});

for (const { label, width, height } of [
  { label: 'desktop', width: 1400, height: 900 },
  { label: 'phone', width: 390, height: 844 },
]) {
  test(`in a browser (${label}, ${width} px): /failures groups by job, filters by category, and stays live`, async () => {
    const page = await browser.newPage({ viewport: { width, height } });
    await page.goto(`${web.url}/failures`);
    const rows = page.locator('#failure-groups tr[data-job-id]');
    const names = await rows.locator('td[data-label="Job"] a').allInnerTexts();
    assert.ok(names.includes('backup') && names.includes('load-orders'), names.join(', '));
    assert.equal(
      await page.locator('#failing-jobs-count').innerText(),
      String(await rows.count()),
      'the count says how many jobs the list shows',
    );
    const scroll = (await page.evaluate('document.documentElement.scrollWidth')) as number;
    assert.ok(scroll <= width, `the page is ${scroll} px wide at ${width} px`);
    await page.screenshot({
      path: path.join(ARTIFACTS, `web-failures-${label}.png`),
      fullPage: true,
    });
    // Only the etl category.
    await page.selectOption('#f-category', { label: 'etl' });
    await Promise.all([page.waitForURL(/category=\d+/), page.click('#failure-filter button')]);
    assert.deepEqual(await rows.locator('td[data-label="Job"] a').allInnerTexts(), ['load-orders']);
    // A new failure of the job shows up counted, without a reload.
    const before = await rows.first().locator('.groupcount').innerText();
    await run('load-orders', 'failed', 500);
    await page
      .locator('#failure-groups tr[data-job-id] .groupcount', { hasNotText: before })
      .waitFor({ timeout: 10_000 });
    assert.match(await rows.first().locator('.groupcount').innerText(), /^×\d+ since/);
    await page.close();
  });
}
