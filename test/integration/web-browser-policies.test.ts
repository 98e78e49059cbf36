import { launchChromium } from '../helpers/browser';
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { type Browser, type Page } from 'playwright-core';
import { createTestDatabase, type TestDatabase } from '../helpers/services';
import { ROOT } from '../helpers/processes';
import { startTestWeb, type TestWeb } from '../helpers/web';
import { newRunId } from '../../src/core/runs';

/**
 * The pause and resume buttons of the job page and of a category on `/`,
 * clicked in a real browser (Debian's headless Chromium) at desktop width
 * and at 390 px (a phone): each reaches the database through its
 * CSRF-protected form, and the page then says the job is paused. The job
 * page's policies and a retry run are read as a person sees them.
 * Screenshots go to test-artifacts/.
 */

const ARTIFACTS = path.join(ROOT, 'test-artifacts');
let tdb: TestDatabase;
let web: TestWeb;
let browser: Browser;

before(async () => {
  mkdirSync(ARTIFACTS, { recursive: true });
  tdb = await createTestDatabase();
  web = await startTestWeb(tdb.db, tdb.url);
  browser = await launchChromium();
  const res = await fetch(`${web.url}/api/category/nightly`, {
    method: 'PUT',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      jobs: [
        {
          name: 'backup',
          schedule: '0 3 * * *',
          command: '/usr/local/bin/backup',
          overlap: 'forbid',
          starting_deadline: 'PT2H',
          retries: { max: 2 },
        },
        { name: 'vacuum', schedule: '0 4 * * *', command: 'vacuumdb', enabled: false },
      ],
    }),
  });
  assert.equal(res.status, 200);
});

after(async () => {
  await browser?.close();
  await web?.stop();
  await tdb?.drop();
});

function shot(page: Page, name: string): Promise<Buffer> {
  return page.screenshot({ path: path.join(ARTIFACTS, `web-${name}.png`), fullPage: true });
}

async function pausedAt(name: string): Promise<Date | null> {
  return ((await tdb.db('jobs').where('name', name).first()) as { paused_at: Date | null })
    .paused_at;
}

/** Whether `selector` is visible, inside the viewport's width, and big enough to tap. */
async function usable(page: Page, selector: string, width: number): Promise<void> {
  const box = await page.locator(selector).first().boundingBox();
  assert.ok(box, `${selector} is shown`);
  assert.ok(box.x >= 0 && box.x + box.width <= width + 1, `${selector} fits in ${width} px`);
  assert.ok(box.height >= 24, `${selector} is tall enough to tap`);
}

for (const { label, width, height } of [
  { label: 'desktop', width: 1280, height: 820 },
  { label: 'phone', width: 390, height: 844 },
]) {
  test(`in a browser (${label}, ${width} px): pause and resume a job and a category with the buttons`, async () => {
    const page = await browser.newPage({ viewport: { width, height } });
    const problems: string[] = [];
    page.on('console', (m) => {
      if (m.type() === 'error') problems.push(m.text());
    });
    page.on('pageerror', (e) => problems.push(e.message));

    const backup = (await tdb.db('jobs').where('name', 'backup').first()) as { id: number };
    await page.goto(`${web.url}/job/${backup.id}`);
    assert.match(
      await page.locator('#policies').innerText(),
      /skips an occurrence while a run is going/,
    );
    assert.match(await page.locator('#policies').innerText(), /not started if more than 2 h late/);
    await usable(page, '#pause', width);
    await Promise.all([page.waitForURL(/\?paused=1$/), page.click('#pause')]);
    assert.ok(await pausedAt('backup'), 'the click paused the job');
    assert.match(await page.locator('#paused-note').innerText(), /Paused .* by admin from/);
    assert.equal(await page.locator('h1 .flag.paused').count(), 1);
    await shot(page, `job-paused-${label}`);
    await usable(page, '#resume', width);
    await Promise.all([page.waitForURL(/\?resumed=1$/), page.click('#resume')]);
    assert.equal(await pausedAt('backup'), null, 'the click resumed the job');
    assert.equal(await page.locator('#paused-note').count(), 0);

    const vacuum = (await tdb.db('jobs').where('name', 'vacuum').first()) as { id: number };
    await page.goto(`${web.url}/job/${vacuum.id}`);
    assert.match(await page.locator('#disabled-note').innerText(), /Disabled by its category file/);
    assert.equal(await page.locator('#paused-note').count(), 0, 'disabled is not paused');

    await page.goto(`${web.url}/`);
    await usable(page, 'button.cat-pause', width);
    await Promise.all([page.waitForURL(`${web.url}/`), page.click('button.cat-pause')]);
    assert.ok(await pausedAt('backup'));
    assert.ok(await pausedAt('vacuum'));
    assert.equal(await page.locator('table.jobs .flag.paused').count(), 2);
    assert.equal(await page.locator('button.cat-pause').count(), 0);
    await shot(page, `index-paused-${label}`);
    // Run in the page (a string: this file is not compiled with the DOM's types).
    const wide = (await page.evaluate(`[...document.querySelectorAll('body *')]
      .filter((e) => e.getBoundingClientRect().right > window.innerWidth + 1)
      .slice(0, 5)
      .map((e) => e.tagName + '.' + e.className + ':' + Math.round(e.getBoundingClientRect().right))`)) as string[];
    assert.deepEqual(wide, [], 'the job list fits the screen');
    await usable(page, 'button.cat-resume', width);
    await Promise.all([page.waitForURL(`${web.url}/`), page.click('button.cat-resume')]);
    assert.equal(await pausedAt('backup'), null);
    assert.equal(await pausedAt('vacuum'), null);
    assert.deepEqual(problems, [], 'no script errors or CSP violations');
    await page.close();
  });
}

test('in a browser: a retry waiting to run reads "retrying (2 of 3)" and the runs table names the attempt and the reasons, also after a live refresh', async () => {
  const job = (await tdb.db('jobs').where('name', 'backup').first()) as { id: number };
  const now = Date.now();
  const base = { job_id: job.id, job_name: 'backup' };
  const first = newRunId();
  await tdb.db('runs').insert([
    {
      ...base,
      run_id: first,
      scheduled_for: new Date(now - 120_000),
      status: 'failed',
      return_code: 3,
      queued_at: new Date(now - 120_000),
      started_at: new Date(now - 119_000),
      finished_at: new Date(now - 118_000),
    },
    {
      ...base,
      run_id: newRunId(),
      scheduled_for: new Date(now - 60_000),
      status: 'skipped',
      reason: `overlap forbid: run ${first.slice(0, 8)} is not final`,
      queued_at: new Date(now - 60_000),
    },
  ]);
  const page = await browser.newPage({ viewport: { width: 390, height: 844 } });
  await page.goto(`${web.url}/job/${job.id}`);
  assert.equal(await page.locator('.jobstatus .badge').innerText(), 'skipped');
  // The results consumer schedules a retry: the live refresh shows it without a reload.
  await tdb.db('runs').insert({
    ...base,
    run_id: newRunId(),
    scheduled_for: new Date(now + 30_000),
    not_before: new Date(now + 30_000),
    triggered_by: 'retry',
    attempt: 2,
    first_run_id: first,
    status: 'queued',
    queued_at: new Date(now),
  });
  await page.locator('.jobstatus[data-status="retrying (2 of 3)"]').waitFor({ timeout: 15_000 });
  assert.equal(await page.locator('.jobstatus .badge').innerText(), 'retrying (2 of 3)');
  const rows = page.locator('#runs tbody tr[data-run-id]');
  assert.equal(await rows.count(), 3);
  assert.match(await rows.nth(0).innerText(), /retry\s+\(attempt 2 of 3\)/);
  assert.match(await rows.nth(1).innerText(), /overlap forbid: run [0-9a-f]{8} is not final/);
  await shot(page, 'job-retrying-phone');
  await page.close();
});
