/**
 * Run now at once, with the real daemons from dist/: the injector polls
 * only every 60 s here, so a run that starts at all within the test's
 * wait was started by the web's wake order, not by the poll. A burst of
 * clicks is still one `manual` run, claimed from the ledger; and a web
 * without the broker still sets run_now (the next poll claims it).
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { insertJobs, startInjector } from '../helpers/injector';
import {
  postJson,
  runsOfJob,
  startResults,
  startRunner,
  startWeb,
  webConnected,
} from '../helpers/control';
import { useServices, waitFor } from '../helpers/services';

const svc = useServices();
const dir = mkdtempSync(path.join(tmpdir(), 'cronq-runnow-'));

describe('run now at once', () => {
  test('a burst of Run now wakes the injector: one manual run starts long before the next poll', async () => {
    const injector = svc.track(
      await startInjector(svc.db, svc.vhost, { CRONQ_INJECTOR_MAX_POLL_MS: '60000' }),
    );
    startResults(svc);
    const runner = startRunner(svc, mkdtempSync(path.join(tmpdir(), 'cronq-runnow-r-')));
    await runner.waitForLine('AMQP connected');
    const web = await startWeb(svc);
    await webConnected(web);
    const marker = path.join(dir, 'ran');
    const [id] = await insertJobs(svc.db.db, [
      { name: 'now', schedule: null, nextRun: null, command: `echo x >> ${marker}` },
    ]);
    // The injector has looked once and sleeps for up to 60 s.
    await injector.waitForLine('injector running');
    await new Promise((r) => setTimeout(r, 1500));
    const answers = await Promise.all(
      Array.from({ length: 5 }, () => postJson(`${web.url}/api/jobs/${id}/run`)),
    );
    for (const a of answers) assert.equal(a.status, 200);
    await waitFor(() => existsSync(marker), {
      timeoutMs: 20_000,
      message: 'the run started without waiting for the 60 s poll',
    });
    const runs = await waitFor(
      async () => {
        const rows = await runsOfJob(svc.db.db, id!);
        return rows.length > 0 && rows.every((r) => r.status === 'succeeded') ? rows : undefined;
      },
      { message: 'the run recorded' },
    );
    // Five clicks, one run_now flag: one manual run, run once.
    assert.equal(runs.length, 1);
    assert.equal(runs[0]!.triggered_by, 'manual');
    await new Promise((r) => setTimeout(r, 1000));
    assert.equal(readFileSync(marker, 'utf8'), 'x\n');
    assert.equal((await runsOfJob(svc.db.db, id!)).length, 1);
  });

  test('with its broker away, Run now still answers 200 and leaves run_now for the next poll', async () => {
    const web = await startWeb(svc, { RABBITMQ_URL: 'amqp://guest:guest@127.0.0.1:1/' });
    const [id] = await insertJobs(
      svc.db.db,
      [{ name: 'later', schedule: null, nextRun: null, command: 'true' }],
      'runnow-away',
    );
    const res = await postJson(`${web.url}/api/jobs/${id}/run`);
    assert.equal(res.status, 200);
    const row = (await svc.db.db('jobs').where({ id }).first()) as { run_now: number };
    assert.ok(row.run_now === 1 || (await runsOfJob(svc.db.db, id!)).length === 1);
  });
});
