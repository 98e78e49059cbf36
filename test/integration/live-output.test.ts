/**
 * Live output with the real daemons: a runner, the results consumer, the
 * injector and two cronq-web processes. A job printing a line every 100 ms
 * shows on its run page in Chromium within 1 s, without a reload, and at
 * the same time in `cronq logs --follow` against the other web process; a
 * job printing 50 MB as fast as it can is thinned (a visible marker) and
 * not slowed; nothing reaches `cronq.output` while nobody watches; a web
 * without its broker answers 503 and the page says so.
 */
import { launchChromium } from '../helpers/browser';
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { type Browser } from 'playwright-core';
import { OUTPUT_EXCHANGE } from '../../src/core/live/topology';
import { runCommand, startCommand, type Proc } from '../helpers/processes';
import { rabbitmqctl, useServices, waitFor } from '../helpers/services';

const svc = useServices();
let browser: Browser;
let tmp: string;
const webs: Array<{ url: string; port: number; proc: Proc }> = [];

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

async function startWeb(
  env: Record<string, string>,
): Promise<{ url: string; port: number; proc: Proc }> {
  const port = await freePort();
  const proc = svc.track(
    startCommand('cronq-web', {
      env: { DATABASE_URL: svc.db.url, CRONQ_LOG_LEVEL: 'info', PORT: String(port), ...env },
    }),
  );
  const url = `http://127.0.0.1:${port}`;
  await waitFor(async () => (await fetch(`${url}/_status`)).ok, {
    timeoutMs: 30_000,
    message: `cronq-web on ${port}; output:\n${proc.output()}`,
  });
  return { url, port, proc };
}

async function put(url: string, category: string, jobs: unknown[]): Promise<void> {
  const res = await fetch(`${url}/api/category/${category}`, {
    method: 'PUT',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ category, jobs }),
  });
  assert.equal(res.status, 200, await res.text());
}

const yearly = 'R/2030-01-01T00:00:00Z/P1Y';

async function jobId(name: string): Promise<number> {
  return ((await svc.db.db('jobs').where({ name }).first('id')) as { id: number }).id;
}

/** Ask for a run now and return its run id once the injector has queued it. */
async function runNow(url: string, name: string): Promise<string> {
  const id = await jobId(name);
  const before = new Set(
    (
      (await svc.db.db('runs').where({ job_id: id }).select('run_id')) as Array<{ run_id: string }>
    ).map((r) => r.run_id),
  );
  const res = await fetch(`${url}/api/jobs/${id}/run`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
  });
  assert.equal(res.status, 200, await res.text());
  return waitFor(
    async () => {
      const rows = (await svc.db.db('runs').where({ job_id: id }).select('run_id')) as Array<{
        run_id: string;
      }>;
      return rows.find((r) => !before.has(r.run_id))?.run_id;
    },
    { timeoutMs: 20_000, message: `a run of ${name}` },
  );
}

async function runRow(runId: string) {
  return svc.db.db('runs').where({ run_id: runId }).first();
}

async function waitForStatus(runId: string, statuses: string[], timeoutMs = 60_000) {
  return waitFor(
    async () => {
      const r = await runRow(runId);
      return r && statuses.includes(r.status) ? r : undefined;
    },
    { timeoutMs, intervalMs: 50, message: `run ${runId} ${statuses.join('/')}` },
  );
}

/** Read a live stream in the test: its output text and its end status. */
async function readLive(
  url: string,
  runId: string,
): Promise<{ text: string; status: string | undefined }> {
  const res = await fetch(`${url}/api/runs/${runId}/live`, {
    headers: { accept: 'text/event-stream' },
  });
  assert.equal(res.status, 200, await res.clone().text());
  let text = '';
  let status: string | undefined;
  let buf = '';
  const decoder = new TextDecoder();
  for await (const chunk of res.body as AsyncIterable<Uint8Array>) {
    buf += decoder.decode(chunk, { stream: true });
    let i: number;
    while ((i = buf.indexOf('\n\n')) >= 0) {
      const block = buf.slice(0, i);
      buf = buf.slice(i + 2);
      const event = /^event: (.*)$/m.exec(block)?.[1];
      const data = /^data: (.*)$/m.exec(block)?.[1];
      if (!data) continue;
      const d = JSON.parse(data) as { text?: string; status?: string };
      if (event === 'output') text += d.text;
      if (event === 'end') status = d.status;
    }
  }
  return { text, status };
}

describe('live output', () => {
  before(async () => {
    tmp = mkdtempSync(path.join(tmpdir(), 'cronq-live-'));
    const env = {
      DATABASE_URL: svc.db.url,
      RABBITMQ_URL: svc.vhost.url,
      LOG_PATH: tmp,
      CRONQ_LOG_LEVEL: 'info',
      CRONQ_RESULT_BUFFER_PATH: path.join(tmp, 'buffer'),
    };
    const results = svc.track(startCommand('cronq-results', { env }));
    const runner = svc.track(
      startCommand('cronq-runner', { env: { ...env, CRONQ_CONCURRENCY: '4' } }),
    );
    const injector = svc.track(
      startCommand('cronq-injector', { env: { ...env, CRONQ_INJECTOR_MAX_POLL_MS: '200' } }),
    );
    webs.push(
      await startWeb({ RABBITMQ_URL: svc.vhost.url }),
      await startWeb({ RABBITMQ_URL: svc.vhost.url }),
    );
    await Promise.all([
      results.waitForLine('consuming results', 30_000),
      runner.waitForLine('AMQP connected', 30_000),
      injector.waitForLine('injector running', 30_000),
    ]);
    await put(webs[0]!.url, 'live', [
      {
        name: 'ticker',
        schedule: yearly,
        command: 'sleep 1; for i in $(seq 1 80); do echo "tick $i $(date +%s%3N)"; sleep 0.1; done',
      },
      {
        name: 'quiet',
        schedule: yearly,
        command: 'for i in $(seq 1 10); do echo "line $i"; sleep 0.1; done',
      },
      {
        name: 'flood',
        schedule: yearly,
        command:
          'yes "0123456789012345678901234567890123456789012345678901234567890123456789" | head -c 50000000',
      },
    ]);
    browser = await launchChromium();
  });
  after(async () => {
    await browser?.close();
    rmSync(tmp, { recursive: true, force: true });
  });

  test('nothing is sent on cronq.output while nobody watches', { timeout: 60_000 }, async () => {
    const conn = await svc.vhost.connect();
    const ch = await conn.createChannel();
    await ch.assertExchange(OUTPUT_EXCHANGE, 'topic', { durable: true });
    const { queue } = await ch.assertQueue('', { exclusive: true });
    await ch.bindQueue(queue, OUTPUT_EXCHANGE, '#');
    // Asked for with the CLI, against a web without a token (its POST is JSON, as the CSRF rule wants).
    const asked = await runCommand('cronq', {
      args: ['run', 'live/quiet'],
      env: { CRONQ_API_URL: webs[0]!.url },
    });
    assert.equal(asked.code, 0, asked.stderr);
    const runId = asked.stdout.trim();
    const done = await waitForStatus(runId, ['succeeded', 'failed']);
    assert.equal(done.status, 'succeeded');
    assert.match(done.output_tail, /line 10\n$/, 'the stored tail is there as always');
    assert.equal((await ch.checkQueue(queue)).messageCount, 0, 'no live output without a viewer');
    await ch.close();
    // Each web's own output queue is bounded: it can never fill the broker.
    const listed = await rabbitmqctl(
      'list_queues',
      '-p',
      svc.vhost.vhost,
      '--no-table-headers',
      '--silent',
      'name',
      'exclusive',
      'auto_delete',
      'arguments',
    );
    const bounded = listed
      .split('\n')
      // The webs' own output queues (x-max-length 256), not the results consumer's presence queue.
      .filter(
        (l) =>
          l.startsWith('amq.gen-') && l.includes('drop-head') && l.includes('"x-max-length",256'),
      );
    assert.equal(bounded.length, 2, `one bounded queue per web process:\n${listed}`);
    for (const l of bounded) {
      assert.match(l, /\btrue\s+true\b/, 'exclusive and auto-delete');
      assert.match(l, /x-max-length/);
    }
  });

  test(
    'a line every 100 ms reaches the run page in Chromium within 1 s, and `cronq logs --follow` on the other web process',
    { timeout: 120_000 },
    async () => {
      const runId = await runNow(webs[0]!.url, 'ticker');
      await waitForStatus(runId, ['running']);
      const page = await browser.newPage();
      const problems: string[] = [];
      page.on('console', (m) => m.type() === 'error' && problems.push(m.text()));
      page.on('pageerror', (e) => problems.push(e.message));
      // The CLI follows the same run through the web process that does not hold the page's stream.
      const follow = runCommand('cronq', {
        args: ['logs', runId, '--follow'],
        env: { CRONQ_API_URL: webs[1]!.url },
        timeoutMs: 60_000,
      });
      await page.goto(`${webs[0]!.url}/run/${runId}`);
      // In the page: for each update, how long after its line was written it showed.
      await page.evaluate(`(() => {
        window.lags = [];
        window.notReloaded = true;
        const out = document.getElementById('live-output');
        new MutationObserver(() => {
          const now = Date.now();
          const lines = out.textContent.trim().split('\\n');
          const m = /^tick \\d+ (\\d+)$/.exec(lines[lines.length - 1] || '');
          if (m) window.lags.push(now - Number(m[1]));
        }).observe(out, { childList: true, characterData: true, subtree: true });
      })()`);
      await page
        .locator('#live-output')
        .filter({ hasText: /tick 80 / })
        .waitFor({ timeout: 30_000 });
      const lags = await page.evaluate(() => (globalThis as unknown as { lags: number[] }).lags);
      console.log(`live lag per update (ms): max ${Math.max(...lags)}, ${lags.length} updates`);
      assert.ok(lags.length >= 5, `${lags.length} updates`);
      assert.ok(Math.max(...lags) <= 1000, `every line within 1 s: ${lags.join(', ')}`);
      await page
        .locator('#live-state')
        .filter({ hasText: /The run ended: succeeded/ })
        .waitFor({ timeout: 30_000 });
      assert.equal(
        await page.evaluate(() => (globalThis as unknown as { notReloaded?: boolean }).notReloaded),
        true,
      );
      assert.deepEqual(problems, [], 'no script errors or CSP violations');
      await page.close();

      const cli = await follow;
      assert.equal(cli.code, 0, cli.stderr);
      // From when it connected to the end, every line, in order, none twice.
      const ticks = [...cli.stdout.matchAll(/^tick (\d+) \d+$/gm)].map((m) => Number(m[1]));
      assert.ok(ticks.length >= 5, cli.stdout);
      assert.deepEqual(
        ticks,
        Array.from({ length: ticks.length }, (_, i) => 81 - ticks.length + i),
      );
      assert.match(cli.stderr, new RegExp(`run ${runId} succeeded`));
      // --follow returns once the result is stored, not just when the live
      // stream (from the runner) says it ended.
      const row = await runRow(runId);
      assert.equal(row.status, 'succeeded');
      assert.ok(
        row.output_tail.endsWith(cli.stdout),
        'the stored tail is the whole output, as always',
      );
      assert.match(row.output_tail, /^tick 1 \d+\ntick 2 /);
    },
  );

  test(
    'a job printing 50 MB as fast as it can is not slowed by a live viewer; its stream is thinned with a marker',
    { timeout: 240_000 },
    async () => {
      const timeOf = (r: { started_at: Date; finished_at: Date }) =>
        r.finished_at.getTime() - r.started_at.getTime();
      const alone = await runNow(webs[0]!.url, 'flood');
      const a = await waitForStatus(alone, ['succeeded', 'failed'], 120_000);
      assert.equal(a.status, 'succeeded');

      const watched = await runNow(webs[0]!.url, 'flood');
      // The viewer connects while the run is queued or running: it sees it from the start.
      const live = await readLive(webs[1]!.url, watched);
      const w = await waitForStatus(watched, ['succeeded', 'failed'], 120_000);
      assert.equal(w.status, 'succeeded');
      assert.equal(live.status, 'succeeded');
      console.log(
        `50 MB job: ${timeOf(a)} ms alone, ${timeOf(w)} ms watched; ${live.text.length} characters streamed`,
      );
      assert.ok(
        timeOf(w) <= timeOf(a) * 1.5 + 1000,
        `${timeOf(w)} ms watched vs ${timeOf(a)} ms alone`,
      );
      assert.match(live.text, /\[… \d+(\.\d)? (MB|KB) not shown …\]\n/);
      assert.ok(live.text.length < 5_000_000, 'the stream is thinned, not 50 MB');
      assert.equal(w.output_tail, a.output_tail, 'the stored tail is the same');
    },
  );

  test('a web without its broker: the live view answers 503 "broker unavailable", the run page renders and says so', async () => {
    const deaf = await startWeb({
      RABBITMQ_URL: `amqp://guest:guest@127.0.0.1:${await freePort()}/`,
    });
    const [row] = (await svc.db.db('jobs').where({ name: 'quiet' }).select('id')) as Array<{
      id: number;
    }>;
    const runId = 'ab'.repeat(16);
    await svc.db.db('runs').insert({
      run_id: runId,
      job_id: row!.id,
      job_name: 'quiet',
      scheduled_for: new Date('2029-01-01T00:00:00Z'),
      status: 'running',
      queued_at: new Date(),
      started_at: new Date(),
    });
    const res = await fetch(`${deaf.url}/api/runs/${runId}/live`);
    assert.equal(res.status, 503);
    assert.match(
      ((await res.json()) as { error: { message: string } }).error.message,
      /^broker unavailable/,
    );
    const page = await browser.newPage();
    await page.goto(`${deaf.url}/run/${runId}`);
    await page
      .locator('#live-state')
      .filter({ hasText: /Live output unavailable: broker unavailable/ })
      .waitFor({ timeout: 10_000 });
    assert.equal(await page.locator('h1').count(), 1);
    await page.close();
    assert.equal((await fetch(`${deaf.url}/api/runs/${'cd'.repeat(16)}/live`)).status, 404);
    await deaf.proc.stop();
  });
});
