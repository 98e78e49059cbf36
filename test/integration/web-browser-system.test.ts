import { launchChromium } from '../helpers/browser';
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { type Browser } from 'playwright-core';
import { useServices, waitFor } from '../helpers/services';
import { ROOT, startCommand, type Proc } from '../helpers/processes';
import { startInjector } from '../helpers/injector';
import { startTestWeb, type TestWeb } from '../helpers/web';
import { AmqpConnection } from '../../src/core/amqp';
import { loadConfig } from '../../src/core/config';
import { silentLogger } from '../../src/core/logger';

/**
 * /system with the real daemons: a runner announces itself (every
 * CRONQ_HEARTBEAT_SECONDS, here 1 s) on cronq_presence, the results
 * consumer records it, the injector records its cycles, and the page, in
 * Chromium at desktop width and at 390 px, shows them alive; once the
 * runner is stopped it is shown silent after three of its periods.
 */

const svc = useServices();
const ARTIFACTS = path.join(ROOT, 'test-artifacts');
let web: TestWeb;
let broker: AmqpConnection | undefined;
let browser: Browser;
let runner: Proc;
let tmp: string;

/** Started in the test: useServices' own before hook has made the database and vhost by then. */
async function startAll(): Promise<void> {
  mkdirSync(ARTIFACTS, { recursive: true });
  tmp = mkdtempSync(path.join(tmpdir(), 'cronq-system-'));
  svc.track(
    startCommand('cronq-results', {
      env: { DATABASE_URL: svc.db.url, RABBITMQ_URL: svc.vhost.url },
    }),
  );
  runner = svc.track(
    startCommand('cronq-runner', {
      env: {
        RABBITMQ_URL: svc.vhost.url,
        CRONQ_CONCURRENCY: '3',
        CRONQ_QUEUE: 'reports',
        CRONQ_HEARTBEAT_SECONDS: '1',
        CRONQ_HOSTNAME: 'runner-a.test',
        LOG_PATH: tmp,
        CRONQ_RESULT_BUFFER_PATH: path.join(tmp, 'buffer'),
      },
    }),
  );
  svc.track(await startInjector(svc.db, svc.vhost));
  broker = new AmqpConnection(loadConfig({ RABBITMQ_URL: svc.vhost.url }).amqp, {
    logger: silentLogger(),
    name: 'test web',
  });
  broker.start();
  web = await startTestWeb(svc.db.db, svc.db.url, {}, { broker });
  browser = await launchChromium();
}

after(async () => {
  await browser?.close();
  await web?.stop();
  await broker?.close();
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

test('/system shows the runner and the injector alive, then the stopped runner as silent', async () => {
  await startAll();
  const row = await waitFor(
    async () =>
      (await svc.db.db('runners').where('host', 'runner-a.test').first()) as
        { queue: string; concurrency: number; running: number; version: string } | undefined,
    { timeoutMs: 30_000, intervalMs: 250, message: 'the runner recorded' },
  );
  assert.equal(row.queue, 'reports');
  assert.equal(row.concurrency, 3);
  assert.match(row.version, /^\d+\.\d+\.\d+/);
  await waitFor(async () => (await svc.db.db('injectors').first()) as unknown, {
    timeoutMs: 30_000,
    intervalMs: 250,
    message: 'the injector recorded',
  });

  for (const { label, width, height } of [
    { label: 'desktop', width: 1400, height: 900 },
    { label: 'phone', width: 390, height: 844 },
  ]) {
    const page = await browser.newPage({ viewport: { width, height } });
    await page.goto(`${web.url}/`);
    await Promise.all([
      page.waitForURL(/\/system$/),
      page.click('header nav a:has-text("System")'),
    ]);
    const line = page.locator('#sys-runners tr[data-runner]');
    assert.equal(await line.count(), 1);
    assert.equal(await line.getAttribute('data-state'), 'alive');
    const text = await line.innerText();
    assert.match(text, /runner-a\.test/);
    assert.match(text, /reports/);
    assert.match(text, /0 of 3/);
    assert.equal(
      await page.locator('#sys-injectors tr[data-injector]').getAttribute('data-state'),
      'alive',
    );
    assert.match(await page.locator('#sys-database').innerText(), /reachable\s+schema\s+\S+/);
    // Queue depths over AMQP: the runner's own queue, consumed by it; the results queue by cronq-results.
    assert.match(await page.locator('#sys-broker').innerText(), /^Broker\s+reachable/);
    assert.match(
      await page.locator('#results-backlog').innerText(),
      /results waiting to be stored: \d+/,
    );
    assert.match(
      await page
        .locator('#sys-broker tr[data-queue="reports"] td[data-label="Consumers"]')
        .innerText(),
      /^1/,
    );
    assert.match(
      await page
        .locator('#sys-broker tr[data-queue="cronq_results"] td[data-label="Consumers"]')
        .innerText(),
      /^1/,
    );
    const scroll = (await page.evaluate('document.documentElement.scrollWidth')) as number;
    assert.ok(scroll <= width, `the page is ${scroll} px wide at ${width} px`);
    await page.screenshot({
      path: path.join(ARTIFACTS, `web-system-${label}.png`),
      fullPage: true,
    });
    await page.close();
  }

  await runner.stop();
  for (const { width, height } of [
    { width: 1400, height: 900 },
    { width: 390, height: 844 },
  ]) {
    const page = await browser.newPage({ viewport: { width, height } });
    await waitFor(
      async () => {
        await page.goto(`${web.url}/system`);
        return (
          (await page.locator('#sys-runners tr[data-runner]').getAttribute('data-state')) ===
          'silent'
        );
      },
      {
        timeoutMs: 15_000,
        intervalMs: 500,
        message: `the stopped runner shown silent at ${width} px`,
      },
    );
    assert.match(await page.locator('#sys-runners tr[data-runner]').innerText(), /silent/);
    await page.close();
  }
});

test('/system without a broker says the queue depths cannot be read, and still shows the rest', async () => {
  const plain = await startTestWeb(svc.db.db, svc.db.url);
  try {
    const html = await (await fetch(`${plain.url}/system`)).text();
    assert.match(
      html,
      /unreachable<\/span> this web process has no broker configured: queue depths cannot be read now/,
    );
    assert.match(html, /id="sys-database"/);
  } finally {
    await plain.stop();
  }
});
