import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { startCommand } from '../helpers/processes';
import { insertJobs } from '../helpers/injector';
import { insertRun } from '../helpers/results';
import { useServices, waitFor } from '../helpers/services';
import { startTestWeb } from '../helpers/web';
import { freePort, parseMetrics, sampleValue, scrape } from '../helpers/metrics';

/**
 * Who may read /metrics, and how the setting is checked: the web's rules
 * (loopback only without a token; a bearer token otherwise), bad settings
 * refused at start with a line that names them.
 */

const services = useServices();
const TOKEN = 'metrics-token-for-tests';

function promtool(): string | undefined {
  const r = spawnSync('sh', ['-c', 'command -v promtool'], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : undefined;
}

describe('a daemon’s /metrics server', () => {
  test('with a token it may bind beyond loopback: 401 without the bearer token or with a wrong one, 200 with it', async () => {
    const port = await freePort();
    const runner = services.track(
      startCommand('cronq-runner', {
        env: {
          RABBITMQ_URL: services.vhost.url,
          LOG_PATH: mkdtempSync(path.join(tmpdir(), 'cronq-metrics-auth-')),
          CRONQ_METRICS_PORT: String(port),
          CRONQ_METRICS_LISTEN: '0.0.0.0',
          CRONQ_METRICS_TOKEN: TOKEN,
        },
      }),
    );
    await runner.waitForLine('serving /metrics', 30_000);
    const url = `http://127.0.0.1:${port}/metrics`;
    const none = await scrape(url);
    assert.equal(none.status, 401);
    assert.doesNotMatch(none.text, /cronq_runner/, 'nothing of the metrics without the token');
    assert.equal((await scrape(url, { authorization: `Bearer ${TOKEN}x` })).status, 401);
    const ok = await scrape(url, { authorization: `Bearer ${TOKEN}` });
    assert.equal(ok.status, 200);
    assert.ok(parseMetrics(ok.text).has('cronq_runner_started_total'));
    assert.equal((await scrape(`http://127.0.0.1:${port}/other`)).status, 404);
    const post = await fetch(url, {
      method: 'POST',
      headers: { authorization: `Bearer ${TOKEN}` },
    });
    assert.equal(post.status, 405);
    // Oversized headers are cut off by the server, not read.
    const big = await fetch(url, { headers: { 'x-pad': 'a'.repeat(20_000) } });
    assert.equal(big.status, 431);

    const tool = promtool();
    if (tool) {
      // promtool's lint of the exposition: our names pass (prom-client's own
      // nodejs_active_*_total gauges are reported, and are not ours to rename).
      const lint = spawnSync(tool, ['check', 'metrics'], { input: ok.text, encoding: 'utf8' });
      const ours = `${lint.stdout}${lint.stderr}`.split('\n').filter((l) => l.includes('cronq_'));
      assert.deepEqual(ours, [], 'promtool check metrics finds nothing wrong with cronq_ metrics');
    }
  });

  test('without a token it binds only to loopback: a non-loopback CRONQ_METRICS_LISTEN is refused at start', async () => {
    const p = startCommand('cronq-results', {
      env: {
        DATABASE_URL: services.db.url,
        RABBITMQ_URL: services.vhost.url,
        CRONQ_METRICS_PORT: String(await freePort()),
        CRONQ_METRICS_LISTEN: '0.0.0.0',
      },
    });
    const { code } = await p.exited;
    assert.equal(code, 2);
    assert.match(p.output(), /CRONQ_METRICS_LISTEN=0\.0\.0\.0 is not a loopback address/);
  });

  test('a bad port is refused at start with a line that names the setting', async () => {
    for (const [args, env] of [
      [['--metrics-port', 'abc'], {}],
      [[], { CRONQ_METRICS_PORT: '70000' }],
    ] as Array<[string[], Record<string, string>]>) {
      const p = startCommand('cronq-injector', {
        args,
        env: { DATABASE_URL: services.db.url, RABBITMQ_URL: services.vhost.url, ...env },
      });
      const { code } = await p.exited;
      assert.equal(code, 2, p.output());
      assert.match(
        p.output(),
        /CRONQ_METRICS_PORT=.* is not valid: expected a whole number from 1 to 65535/,
      );
    }
  });

  test('a port already taken stops the daemon at start with the address in the message', async () => {
    const taken = net.createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    const port = (taken.address() as net.AddressInfo).port;
    try {
      const p = startCommand('cronq-runner', {
        env: {
          RABBITMQ_URL: services.vhost.url,
          LOG_PATH: mkdtempSync(path.join(tmpdir(), 'cronq-metrics-taken-')),
          CRONQ_METRICS_PORT: String(port),
        },
      });
      const { code } = await p.exited;
      assert.notEqual(code, 0);
      assert.match(p.output(), new RegExp(`cannot serve /metrics on 127\\.0\\.0\\.1:${port}`));
    } finally {
      taken.close();
    }
  });
});

describe('the web’s /metrics', () => {
  test('with CRONQ_API_TOKEN set: 401 without a token, 200 with the API token or CRONQ_METRICS_TOKEN', async () => {
    const web = await startTestWeb(services.db.db, services.db.url, {
      CRONQ_API_TOKEN: 'api-token-for-tests',
      CRONQ_METRICS_TOKEN: TOKEN,
    });
    try {
      const url = `${web.url}/metrics`;
      assert.equal((await scrape(url)).status, 401);
      assert.equal((await scrape(url, { authorization: 'Bearer wrong-token-1' })).status, 401);
      for (const t of [TOKEN, 'api-token-for-tests']) {
        const r = await scrape(url, { authorization: `Bearer ${t}` });
        assert.equal(r.status, 200, t);
        assert.ok(parseMetrics(r.text).has('cronq_jobs'));
      }
      // The metrics token opens /metrics only, never the admin or the API.
      assert.equal(
        (await scrape(`${web.url}/api/jobs`, { authorization: `Bearer ${TOKEN}` })).status,
        401,
      );
    } finally {
      await web.stop();
    }
  });

  test('late and overdue jobs and the oldest queued run come from the database', async () => {
    const { db } = services.db;
    const tenMinutesAgo = new Date(Date.now() - 600_000);
    const [late] = await insertJobs(
      db,
      [
        { name: 'late', schedule: 'R/2020-01-01T00:00:00Z/PT1M', nextRun: tenMinutesAgo },
        {
          name: 'not-late',
          schedule: 'R/2020-01-01T00:00:00Z/PT1M',
          nextRun: new Date(Date.now() + 600_000),
        },
      ],
      'metrics-web',
    );
    await insertRun(db, late!, { queuedAt: new Date(Date.now() - 120_000) });
    // As cronq-results marks a job overdue by its alert_after (docs/notifications.md).
    await db('jobs')
      .where({ id: late })
      .update({ alert_after_ms: 60_000, overdue_since: new Date() });
    const web = await startTestWeb(db, services.db.url);
    try {
      const m = await waitFor(async () => parseMetrics((await scrape(`${web.url}/metrics`)).text), {
        message: 'the web answers /metrics',
      });
      assert.equal(sampleValue(m, 'cronq_jobs_late'), 1);
      assert.equal(sampleValue(m, 'cronq_jobs_overdue'), 1);
      const age = sampleValue(m, 'cronq_runs_oldest_queued_age_seconds');
      assert.ok(age >= 115 && age < 600, `oldest queued run ~120 s old (${age})`);
    } finally {
      await web.stop();
    }
  });
});
