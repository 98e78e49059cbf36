import { launchChromium } from '../helpers/browser';
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { type Browser, type Locator } from 'playwright-core';
import { useServices, waitFor } from '../helpers/services';
import { ROOT, startCommand } from '../helpers/processes';
import { insertJobs, startInjector } from '../helpers/injector';
import { startTestWeb, type TestWeb } from '../helpers/web';

/**
 * A run's output as the operator reads it, with the real daemons and
 * Chromium at desktop width and at 390 px: stderr lines marked apart from
 * stdout, the reason of an ordinary non-zero exit is stderr's last line,
 * the viewer opens at the end, search keeps the matching lines, the
 * stored tail downloads as a file, what was cut is said in bytes, and a
 * running run says for how long.
 */

const svc = useServices();
const ARTIFACTS = path.join(ROOT, 'test-artifacts');
let web: TestWeb | undefined;
let browser: Browser | undefined;
let tmp = '';

after(async () => {
  await browser?.close();
  await web?.stop();
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

interface RunRow {
  run_id: string;
  status: string;
  reason: string | null;
  stderr_lines: string | null;
  output_total: number | null;
  output_tail: string | null;
}

async function finalRun(jobId: number): Promise<RunRow> {
  return waitFor(
    async () => {
      const r = (await svc.db
        .db('runs')
        .where({ job_id: jobId })
        .whereNotIn('status', ['queued', 'running'])
        .first()) as RunRow | undefined;
      return r;
    },
    { timeoutMs: 40_000, intervalMs: 200, message: `a final run of job ${jobId}` },
  );
}

test('output: stderr marked, the reason from stderr, opened at the end, searchable, downloadable, the cut said', async () => {
  mkdirSync(ARTIFACTS, { recursive: true });
  tmp = mkdtempSync(path.join(tmpdir(), 'cronq-output-'));
  svc.track(
    startCommand('cronq-results', {
      env: { DATABASE_URL: svc.db.url, RABBITMQ_URL: svc.vhost.url },
    }),
  );
  svc.track(
    startCommand('cronq-runner', {
      env: {
        RABBITMQ_URL: svc.vhost.url,
        CRONQ_CONCURRENCY: '4',
        CRONQ_OUTPUT_TAIL_BYTES: '4096',
        LOG_PATH: tmp,
        CRONQ_RESULT_BUFFER_PATH: path.join(tmp, 'buffer'),
      },
    }),
  );
  svc.track(await startInjector(svc.db, svc.vhost));
  web = await startTestWeb(svc.db.db, svc.db.url);
  browser = await launchChromium();

  const now = new Date(Date.now() + 500);
  const [failing, long] = await insertJobs(svc.db.db, [
    {
      name: 'db migrate',
      schedule: `R1/${now.toISOString()}/PT1M`,
      nextRun: now,
      // Both streams, interleaved; stderr's last line is why it failed.
      command:
        'echo "connecting to db"; sleep 0.05; echo "warning: slow" >&2; sleep 0.05; echo "applying 3 migrations"; sleep 0.05; echo "ERROR: disk full" >&2; exit 3',
    },
    {
      name: 'chatty',
      schedule: `R1/${now.toISOString()}/PT1M`,
      nextRun: now,
      // 400 lines of about 100 bytes: more than the 4 KiB tail keeps.
      command: 'for i in $(seq 1 400); do printf "line %03d %090d\\n" $i 0; done',
    },
  ]);

  const failed = await finalRun(failing!);
  assert.equal(failed.status, 'failed');
  assert.equal(failed.reason, 'ERROR: disk full', "the reason is stderr's last line");
  // Lines from the end: 1 ERROR (stderr), 2 applying (stdout), 3 warning (stderr), 4 connecting.
  assert.equal(failed.stderr_lines, '1,3');
  assert.equal(Number(failed.output_total), Buffer.byteLength(failed.output_tail ?? ''));
  const chatty = await finalRun(long!);
  assert.equal(Number(chatty.output_total), 400 * 100);
  assert.equal(chatty.stderr_lines, null);

  for (const { label, width, height } of [
    { label: 'desktop', width: 1400, height: 900 },
    { label: 'phone', width: 390, height: 844 },
  ]) {
    const page = await browser.newPage({ viewport: { width, height } });
    await page.goto(`${web.url}/run/${failed.run_id}`);
    const lines = page.locator('#output .line');
    const texts = async (l: Locator): Promise<string[]> =>
      (await l.allInnerTexts()).map((t) => t.trimEnd());
    assert.deepEqual(await texts(lines), [
      'connecting to db',
      'warning: slow',
      'applying 3 migrations',
      'ERROR: disk full',
    ]);
    assert.deepEqual(await texts(page.locator('#output .line.err')), [
      'warning: slow',
      'ERROR: disk full',
    ]);
    assert.match(await page.locator('[data-field="reason"]').innerText(), /^ERROR: disk full$/);
    await page.fill('#output-search', 'MIGRATION');
    await page.locator('#output-found:has-text("1 line matches")').waitFor();
    assert.equal(await page.locator('#output .line:visible').count(), 1);
    assert.equal(
      (await page.locator('#output .line:visible').innerText()).trimEnd(),
      'applying 3 migrations',
    );
    await page.screenshot({
      path: path.join(ARTIFACTS, `web-output-${label}.png`),
      fullPage: true,
    });

    // The long one opens at its end, and says what was cut.
    await page.goto(`${web.url}/run/${chatty.run_id}`);
    const atEnd = (await page.evaluate(
      "(() => { const o = document.getElementById('output'); return o.scrollHeight > o.clientHeight && o.scrollTop + o.clientHeight >= o.scrollHeight - 2; })()",
    )) as boolean;
    assert.ok(atEnd, 'the viewer is scrolled to its last line');
    assert.match(
      await page.locator('#output-total').innerText(),
      /^The run wrote 39 KiB of output; the last 4\.0 KiB were kept, so the first 35 KiB are not here/,
    );
    const [download] = await Promise.all([
      page.waitForEvent('download'),
      page.click('#output-download'),
    ]);
    assert.equal(download.suggestedFilename(), `chatty-${chatty.run_id.slice(0, 8)}.txt`);
    const file = await download.path();
    const { readFileSync } = await import('node:fs');
    assert.equal(readFileSync(file, 'utf8'), chatty.output_tail);
    const scroll = (await page.evaluate('document.documentElement.scrollWidth')) as number;
    assert.ok(scroll <= width, `the page is ${scroll} px wide at ${width} px`);
    await page.close();
  }

  // A running run says for how long, and keeps counting (due only now, so it is still running).
  const soon = new Date(Date.now() + 500);
  const [sleeper] = await insertJobs(svc.db.db, [
    {
      name: 'sleeper',
      schedule: `R1/${soon.toISOString()}/PT1M`,
      nextRun: soon,
      command: 'sleep 30',
    },
  ]);
  const running = await waitFor(
    async () =>
      (await svc.db.db('runs').where({ job_id: sleeper, status: 'running' }).first('run_id')) as
        { run_id: string } | undefined,
    { timeoutMs: 20_000, intervalMs: 200, message: 'the sleeper running' },
  );
  const page = await browser.newPage({ viewport: { width: 390, height: 844 } });
  await page.goto(`${web.url}/run/${running.run_id}`);
  const since = page.locator('[data-field="run_time"]');
  assert.match(await since.innerText(), /^running for \d/);
  const first = await since.innerText();
  await page.waitForTimeout(2100);
  assert.notEqual(await since.innerText(), first, 'it keeps counting');
  await page.close();
});
