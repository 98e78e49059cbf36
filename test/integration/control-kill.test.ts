/**
 * Killing runs with the real daemons from dist/: one injector, one results
 * consumer, two runners as separate processes (each with its own job-log
 * folder, one slot each, CRONQ_KILL_GRACE_SECONDS=1) and two web
 * processes. A kill sent to either web ends the process group of the run
 * wherever it runs; a job that ignores SIGTERM is SIGKILLed after the
 * grace; a run killed while it waits for a busy runner never starts; a
 * final or unknown run is refused without a change; a web whose broker is
 * away still serves its pages and answers kill with 503.
 */
import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { bindQueue, insertJobs, startInjector } from '../helpers/injector';
import {
  groupAlive,
  groupCommand,
  pgidOf,
  postJson,
  runWithStatus,
  runsOfJob,
  startResults,
  startRunner,
  startWeb,
  webConnected,
  type WebProc,
} from '../helpers/control';
import { useServices, waitFor } from '../helpers/services';
import { dumpTables } from '../helpers/web';

const svc = useServices();
const dir = mkdtempSync(path.join(tmpdir(), 'cronq-kill-'));

describe('kill', () => {
  let web1: WebProc;
  let web2: WebProc;

  before(async () => {
    svc.track(await startInjector(svc.db, svc.vhost, { CRONQ_INJECTOR_MAX_POLL_MS: '200' }));
    startResults(svc);
    const a = startRunner(svc, mkdtempSync(path.join(tmpdir(), 'cronq-kill-a-')));
    const b = startRunner(svc, mkdtempSync(path.join(tmpdir(), 'cronq-kill-b-')));
    await Promise.all([a.waitForLine('AMQP connected'), b.waitForLine('AMQP connected')]);
    [web1, web2] = await Promise.all([startWeb(svc), startWeb(svc)]);
    await Promise.all([webConnected(web1), webConnected(web2)]);
  });

  async function job(name: string, rest: string): Promise<number> {
    const [id] = await insertJobs(svc.db.db, [
      { name, schedule: null, nextRun: null, runNow: true, command: groupCommand(dir, name, rest) },
    ]);
    return id!;
  }

  test('a running sleep is killed through the other web process: its group is gone, the run is killed, by whom', async () => {
    const id = await job('sleeper', 'sleep 60');
    const run = await runWithStatus(svc.db.db, id, 'running');
    const pgid = await pgidOf(dir, 'sleeper');
    assert.ok(groupAlive(pgid));
    const res = await postJson(`${web2.url}/api/runs/${run.run_id}/kill`);
    assert.equal(res.status, 202, await res.clone().text());
    const body = (await res.json()) as { data: { run: Record<string, unknown> } };
    assert.equal(body.data.run.kill_requested, true);
    assert.equal(body.data.run.killed_by, 'api from 127.0.0.1');
    await waitFor(() => !groupAlive(pgid), { timeoutMs: 5000, message: 'process group gone' });
    const killed = await runWithStatus(svc.db.db, id, 'killed');
    assert.equal(killed.killed_by, 'api from 127.0.0.1');
    assert.ok(killed.killed_at instanceof Date);
    assert.match(killed.reason ?? '', /^killed by api from 127\.0\.0\.1; process group terminated/);
    assert.ok(killed.finished_at !== null);
    const api = (await (await fetch(`${web1.url}/api/runs/${run.run_id}`)).json()) as {
      data: { run: Record<string, unknown> };
    };
    assert.equal(api.data.run.status, 'killed');
    assert.equal(api.data.run.killed_by, 'api from 127.0.0.1');
    assert.match(String(api.data.run.killed_at), /^\d{4}-\d\d-\d\dT/);
    const page = await (await fetch(`${web1.url}/run/${run.run_id}`)).text();
    assert.match(page, /Kill asked<\/dt><dd id="killed">[^<]+ by api from 127\.0\.0\.1/);

    // Final now: 409 with its status, and nothing changes.
    const before = await dumpTables(svc.db.db);
    const again = await postJson(`${web1.url}/api/runs/${run.run_id}/kill`);
    assert.equal(again.status, 409);
    const err = (await again.json()) as { error: { status: string; message: string } };
    assert.equal(err.error.status, 'killed');
    const unknown = await postJson(`${web1.url}/api/runs/${'0'.repeat(32)}/kill`);
    assert.equal(unknown.status, 404);
    assert.equal((await postJson(`${web1.url}/api/runs/nothex/kill`)).status, 400);
    assert.equal(await dumpTables(svc.db.db), before);
  });

  test('a job that ignores SIGTERM is SIGKILLed after CRONQ_KILL_GRACE_SECONDS', async () => {
    const id = await job('stubborn', "trap '' TERM; sleep 60");
    const run = await runWithStatus(svc.db.db, id, 'running');
    const pgid = await pgidOf(dir, 'stubborn');
    const t0 = Date.now();
    assert.equal((await postJson(`${web1.url}/api/runs/${run.run_id}/kill`)).status, 202);
    await waitFor(() => !groupAlive(pgid), { timeoutMs: 6000, message: 'process group gone' });
    // SIGTERM did nothing: it took the grace (1 s) and a SIGKILL.
    assert.ok(Date.now() - t0 >= 900, `gone after ${Date.now() - t0} ms`);
    const killed = await runWithStatus(svc.db.db, id, 'killed');
    assert.match(killed.reason ?? '', /SIGKILL/);
  });

  test('a run killed while every runner is busy never starts once a runner is free', async () => {
    const busy = [await job('busy1', 'sleep 60'), await job('busy2', 'sleep 60')];
    const busyRuns = await Promise.all(busy.map((id) => runWithStatus(svc.db.db, id, 'running')));
    const marker = path.join(dir, 'late.ran');
    const [lateId] = await insertJobs(svc.db.db, [
      { name: 'late', schedule: null, nextRun: null, runNow: true, command: `touch ${marker}` },
    ]);
    // Published, waiting for a slot in a runner or back on the queue.
    const queued = await waitFor(
      async () =>
        (await svc.db.db('runs').where({ job_id: lateId }).whereNotNull('published_at').first()) as
          { run_id: string } | undefined,
      { message: 'the late run is published' },
    );
    const res = await postJson(`${web1.url}/api/runs/${queued.run_id}/kill`);
    assert.equal(res.status, 200, await res.clone().text());
    assert.equal(
      ((await res.json()) as { data: { run: { status: string } } }).data.run.status,
      'killed',
    );
    for (const r of busyRuns)
      assert.equal((await postJson(`${web2.url}/api/runs/${r.run_id}/kill`)).status, 202);
    await Promise.all(busy.map((id) => runWithStatus(svc.db.db, id, 'killed')));
    // Both runners are free: give the queued delivery every chance to run.
    await new Promise((r) => setTimeout(r, 3000));
    assert.equal(existsSync(marker), false, 'the killed run must never start');
    const [late] = await runsOfJob(svc.db.db, lateId!);
    assert.equal(late!.status, 'killed');
    assert.equal(late!.started_at, null);
    assert.equal(late!.killed_by, 'api from 127.0.0.1');
  });

  test('a run killed before it started, then started by a runner that never heard the order, is killed at once', async () => {
    // A queue no runner consumes yet: the run waits there while it is killed.
    const conn = await svc.vhost.connect();
    const ch = await conn.createChannel();
    await bindQueue(ch, 'latecomers', 'latecomers');
    await conn.close();
    const [id] = await insertJobs(svc.db.db, [
      {
        name: 'latecomer',
        schedule: null,
        nextRun: null,
        runNow: true,
        routingKey: 'latecomers',
        command: groupCommand(dir, 'latecomer', 'sleep 60'),
      },
    ]);
    const queued = await waitFor(
      async () =>
        (await svc.db.db('runs').where({ job_id: id }).whereNotNull('published_at').first()) as
          { run_id: string } | undefined,
      { message: 'the run is published' },
    );
    const res = await postJson(`${web1.url}/api/runs/${queued.run_id}/kill`);
    assert.equal(res.status, 200, await res.clone().text());
    // Started after the order: it does not know it, takes the delivery and runs it.
    const late = startRunner(svc, mkdtempSync(path.join(tmpdir(), 'cronq-kill-c-')), {
      CRONQ_QUEUE: 'latecomers',
    });
    await late.waitForLine('AMQP connected');
    const pgid = await pgidOf(dir, 'latecomer');
    // cronq-results sees the start of a run stored killed and sends the order again.
    await waitFor(() => !groupAlive(pgid), {
      timeoutMs: 10_000,
      message: 'the late-started run is killed',
    });
    const [run] = await runsOfJob(svc.db.db, id!);
    assert.equal(run!.status, 'killed');
    assert.equal(run!.killed_by, 'api from 127.0.0.1');
  });

  test('the Kill button on the run page and the job page ends a running run', async () => {
    const id = await job('button', 'sleep 60');
    const run = await runWithStatus(svc.db.db, id, 'running');
    const page = await (await fetch(`${web1.url}/run/${run.run_id}`)).text();
    assert.match(page, new RegExp(`action="/run/${run.run_id}/kill"`));
    const jobPage = await (await fetch(`${web1.url}/job/${id}`)).text();
    assert.match(jobPage, new RegExp(`data-kill-run="${run.run_id}"`));
    const csrf = /name="_csrf" value="([^"]+)"/.exec(page)![1]!;
    // Without the form's token: refused, nothing changes.
    const forged = await fetch(`${web1.url}/run/${run.run_id}/kill`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: 'back=job',
      redirect: 'manual',
    });
    assert.equal(forged.status, 403);
    assert.equal((await runsOfJob(svc.db.db, id))[0]!.killed_at, null);
    const res = await fetch(`${web1.url}/run/${run.run_id}/kill`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ _csrf: csrf, back: 'job' }).toString(),
      redirect: 'manual',
    });
    assert.equal(res.status, 303);
    assert.equal(res.headers.get('location'), `/job/${id}?kill=1`);
    const killed = await runWithStatus(svc.db.db, id, 'killed');
    assert.equal(killed.killed_by, 'admin from 127.0.0.1');
    const after = await (await fetch(`${web1.url}/run/${run.run_id}`)).text();
    assert.doesNotMatch(after, /action="\/run\/[0-9a-f]{32}\/kill"/);
  });

  test('with its broker away a web serves pages and answers kill with 503, changing nothing', async () => {
    const id = await job('orphan', 'sleep 60');
    const run = await runWithStatus(svc.db.db, id, 'running');
    const away = await startWeb(svc, {
      RABBITMQ_URL: svc.vhost.url.replace(/\/[^/]+$/, '/cronq_no_such_vhost'),
    });
    const unreachable = await startWeb(svc, { RABBITMQ_URL: 'amqp://guest:guest@127.0.0.1:1/' });
    for (const w of [away, unreachable]) {
      for (const p of ['/', `/job/${id}`, `/run/${run.run_id}`, `/api/runs/${run.run_id}`])
        assert.equal((await fetch(`${w.url}${p}`)).status, 200, p);
      const before = await dumpTables(svc.db.db);
      const res = await postJson(`${w.url}/api/runs/${run.run_id}/kill`);
      assert.equal(res.status, 503);
      assert.equal(
        ((await res.json()) as { error: { message: string } }).error.message,
        'broker unavailable',
      );
      assert.equal(await dumpTables(svc.db.db), before);
    }
    const pgid = await pgidOf(dir, 'orphan');
    assert.ok(groupAlive(pgid), 'nothing was queued to kill it later');
    assert.equal((await postJson(`${web1.url}/api/runs/${run.run_id}/kill`)).status, 202);
    await runWithStatus(svc.db.db, id, 'killed');
  });
});
