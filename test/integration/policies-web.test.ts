import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createTestDatabase, type TestDatabase } from '../helpers/services';
import { dumpTables, startTestWeb, type TestWeb } from '../helpers/web';
import { newRunId } from '../../src/core/runs';

/**
 * Job policies in the web admin and the API (docs/policies.md), against a
 * real database: the policy fields of a category PUT, pause and resume,
 * the effective policies shown, and skipped, missed and retry runs (rows
 * inserted as the daemons write them).
 */

let tdb: TestDatabase;
let web: TestWeb;

/** Loosely typed answers: the tests assert the shapes. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Body = any;

async function call(
  method: string,
  path: string,
  body?: unknown,
): Promise<{ status: number; body: Body }> {
  const res = await fetch(`${web.url}${path}`, {
    method,
    headers: { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : undefined };
}
const put = (name: string, body: unknown, query = '') =>
  call('PUT', `/api/category/${encodeURIComponent(name)}${query}`, body);
const get = (path: string) => call('GET', path);
const post = (path: string) => call('POST', path);

async function page(path: string): Promise<{ status: number; html: string }> {
  const res = await fetch(`${web.url}${path}`);
  return { status: res.status, html: await res.text() };
}

async function jobRow(name: string): Promise<Body> {
  return tdb.db('jobs').where('name', name).first();
}

async function insertRun(jobId: number, fields: Record<string, unknown>): Promise<string> {
  const runId = newRunId();
  const now = new Date();
  await tdb.db('runs').insert({
    run_id: runId,
    job_id: jobId,
    job_name: 'x',
    scheduled_for: new Date(now.getTime() - Math.floor(Math.random() * 1e9)),
    triggered_by: 'schedule',
    status: 'succeeded',
    queued_at: now,
    ...fields,
  });
  return runId;
}

async function csrfTokenOf(path: string): Promise<string> {
  const html = (await page(path)).html;
  return /name="_csrf" value="([^"]+)"/.exec(html)![1]!;
}

async function form(path: string, fields: Record<string, string>): Promise<Response> {
  return fetch(`${web.url}${path}`, {
    method: 'POST',
    redirect: 'manual',
    headers: { 'content-type': 'application/x-www-form-urlencoded', origin: web.url },
    body: new URLSearchParams(fields).toString(),
  });
}

const RETRIES = { max: 2, delay: 'PT30S', backoff: 2, max_delay: 'PT15M', on: ['failed'] };
const POLICED = {
  category: 'pol',
  jobs: [
    {
      name: 'backup',
      schedule: '0 3 * * *',
      command: '/usr/local/bin/backup',
      overlap: 'forbid',
      catch_up: 'skip',
      starting_deadline: 'PT2H',
      retries: RETRIES,
    },
    { name: 'plain', schedule: '0 4 * * *', command: 'true' },
  ],
};

before(async () => {
  tdb = await createTestDatabase();
  web = await startTestWeb(tdb.db, tdb.url);
  assert.equal((await put('pol', POLICED)).status, 200);
});

after(async () => {
  await web?.stop();
  await tdb?.drop();
});

describe('category files with policy fields', () => {
  test('a PUT stores the policy fields as written (without enabled) and enabled; a job without them stores NULL and enabled 1', async () => {
    const backup = await jobRow('backup');
    assert.deepEqual(JSON.parse(backup.policies), {
      overlap: 'forbid',
      catch_up: 'skip',
      starting_deadline: 'PT2H',
      retries: RETRIES,
    });
    assert.equal(backup.enabled, 1);
    const plain = await jobRow('plain');
    assert.equal(plain.policies, null);
    assert.equal(plain.enabled, 1);
    assert.equal(plain.paused_at, null);
  });

  test('re-applying the same file changes nothing; the definition of GET /api/categories/<name> round-trips the fields', async () => {
    const r = await put('pol', POLICED, '?dry_run=1');
    assert.deepEqual(r.body, { status: 'dry_run', added: [], changed: [], removed: [] });
    const cat = await get('/api/categories/pol');
    assert.deepEqual(cat.body.data.category.definition, {
      category: 'pol',
      jobs: [
        { ...POLICED.jobs[0], routing_key: 'default' },
        { ...POLICED.jobs[1], routing_key: 'default' },
      ],
    });
    const again = await put('pol', cat.body.data.category.definition, '?dry_run=1');
    assert.deepEqual(again.body.changed, []);
  });

  test('a change of policy fields is a change of that job, naming the fields, in the dry run and the PUT; the dry run changes nothing', async () => {
    const before = await dumpTables(tdb.db);
    const next = structuredClone(POLICED) as Body;
    next.jobs[0].overlap = 'allow';
    next.jobs[0].retries = { ...RETRIES, max: 3 };
    next.jobs[1].enabled = false;
    const dry = await put('pol', next, '?dry_run=1');
    assert.equal(dry.status, 200);
    assert.deepEqual(dry.body, {
      status: 'dry_run',
      added: [],
      changed: ['backup', 'plain'],
      removed: [],
      policy_changes: { backup: ['overlap', 'retries'], plain: ['enabled'] },
    });
    assert.equal(await dumpTables(tdb.db), before);

    const nextRunBefore = (await jobRow('backup')).next_run;
    const done = await put('pol', next);
    assert.equal(done.body.status, 'success');
    assert.deepEqual(done.body.policy_changes, {
      backup: ['overlap', 'retries'],
      plain: ['enabled'],
    });
    assert.equal((await jobRow('plain')).enabled, 0);
    assert.equal(JSON.parse((await jobRow('backup')).policies).retries.max, 3);
    assert.deepEqual((await jobRow('backup')).next_run, nextRunBefore, 'schedule unchanged');

    // enabled is set by every PUT: absent again means true.
    assert.deepEqual((await put('pol', POLICED)).body.policy_changes, {
      backup: ['overlap', 'retries'],
      plain: ['enabled'],
    });
    assert.equal((await jobRow('plain')).enabled, 1);
  });

  const BAD: Array<{ rule: string; job: Record<string, unknown>; path: string; message: RegExp }> =
    [
      {
        rule: 'overlap "serial"',
        job: { overlap: 'serial' },
        path: 'jobs[0].overlap',
        message: /"allow", "forbid" or "replace"/,
      },
      {
        rule: 'an unknown catch_up',
        job: { catch_up: 'sometimes' },
        path: 'jobs[0].catch_up',
        message: /"once", "skip" or "all"/,
      },
      {
        rule: 'catch_up_limit 0',
        job: { catch_up_limit: 0 },
        path: 'jobs[0].catch_up_limit',
        message: /1 to 1000/,
      },
      {
        rule: 'a starting_deadline in months',
        job: { starting_deadline: 'P1M' },
        path: 'jobs[0].starting_deadline',
        message: /years and months/,
      },
      {
        rule: 'retries without max',
        job: { retries: { delay: 'PT1S' } },
        path: 'jobs[0].retries.max',
        message: /whole number from 0 to 100/,
      },
      {
        rule: 'an unknown retries field',
        job: { retries: { max: 1, jitter: 1 } },
        path: 'jobs[0].retries',
        message: /unknown field "jitter"/,
      },
      {
        rule: 'enabled "yes"',
        job: { enabled: 'yes' },
        path: 'jobs[0].enabled',
        message: /true or false/,
      },
    ];
  for (const c of BAD) {
    test(`${c.rule} is refused with the job's name and the field, and nothing changes`, async () => {
      const before = await dumpTables(tdb.db);
      const body = {
        category: 'pol',
        jobs: [{ name: 'backup', schedule: '0 3 * * *', command: 'x', ...c.job }],
      };
      for (const query of ['', '?dry_run=1']) {
        const r = await put('pol', body, query);
        assert.equal(r.status, 400, JSON.stringify(r.body));
        const p = r.body.error.problems.find((x: Body) => x.path === c.path);
        assert.ok(p, JSON.stringify(r.body.error.problems));
        assert.match(p.message, c.message);
        assert.match(p.message, /job "backup"/);
      }
      assert.equal(await dumpTables(tdb.db), before);
    });
  }

  test('a PUT while paused leaves the job paused (paused_at and paused_by as they were)', async () => {
    const id = (await jobRow('backup')).id;
    assert.equal((await post(`/api/jobs/${id}/pause`)).status, 200);
    const paused = await jobRow('backup');
    const next = structuredClone(POLICED) as Body;
    next.jobs[0].command = 'changed';
    next.jobs[0].enabled = false;
    assert.equal((await put('pol', next)).status, 200);
    const after = await jobRow('backup');
    assert.equal(after.command, 'changed');
    assert.equal(after.enabled, 0);
    assert.deepEqual(after.paused_at, paused.paused_at);
    assert.equal(after.paused_by, paused.paused_by);
    await post(`/api/jobs/${id}/resume`);
    assert.equal((await put('pol', POLICED)).status, 200);
  });
});

describe('pause and resume', () => {
  test('POST /api/jobs/<id>/pause sets paused_at (UTC now) and paused_by; again keeps the first; resume clears; both idempotent', async () => {
    const id = (await jobRow('plain')).id;
    const t0 = Date.now();
    const p1 = await post(`/api/jobs/${id}/pause`);
    assert.equal(p1.status, 200);
    assert.equal(p1.body.status, 'success');
    assert.equal(p1.body.data.job.paused, true);
    assert.equal(p1.body.data.job.paused_by, 'api from 127.0.0.1');
    const at = Date.parse(p1.body.data.job.paused_at);
    assert.ok(Math.abs(at - t0) < 5000, `paused_at ${p1.body.data.job.paused_at} is now (UTC)`);
    const p2 = await post(`/api/jobs/${id}/pause`);
    assert.equal(p2.body.data.job.paused_at, p1.body.data.job.paused_at);
    const job = (await get(`/api/jobs/${id}`)).body.data.job;
    assert.equal(job.paused_at, p1.body.data.job.paused_at);
    assert.equal(job.paused_by, 'api from 127.0.0.1');

    const r1 = await post(`/api/jobs/${id}/resume`);
    assert.deepEqual(r1.body.data.job, { id, paused: false, paused_at: null, paused_by: null });
    const r2 = await post(`/api/jobs/${id}/resume`);
    assert.equal(r2.status, 200);
    assert.equal((await jobRow('plain')).paused_at, null);
  });

  test('an unknown or malformed job id answers 404 and changes nothing', async () => {
    const before = await dumpTables(tdb.db);
    for (const path of [
      '/api/jobs/999999/pause',
      '/api/jobs/999999/resume',
      '/api/jobs/abc/pause',
    ]) {
      const r = await post(path);
      assert.equal(r.status, 404, path);
      assert.ok(r.body.error.message);
    }
    assert.equal((await post('/api/category/nope/pause')).status, 404);
    assert.equal(await dumpTables(tdb.db), before);
  });

  test('POST /api/category/<name>/pause and /resume change every job of the category, and only those', async () => {
    assert.equal(
      (await put('other', { jobs: [{ name: 'o', schedule: '0 1 * * *', command: 'x' }] })).status,
      200,
    );
    const p = await post('/api/category/pol/pause');
    assert.equal(p.status, 200);
    assert.deepEqual(p.body.data.category, {
      id: p.body.data.category.id,
      name: 'pol',
      paused: true,
      jobs: 2,
      changed: 2,
    });
    assert.equal((await post('/api/category/pol/pause')).body.data.category.changed, 0);
    for (const name of ['backup', 'plain']) assert.ok((await jobRow(name)).paused_at);
    assert.equal((await jobRow('o')).paused_at, null);
    const r = await post('/api/category/pol/resume');
    assert.equal(r.body.data.category.changed, 2);
    for (const name of ['backup', 'plain']) assert.equal((await jobRow(name)).paused_at, null);
  });

  test('the Pause and Resume buttons post a CSRF-protected form; without the token nothing changes', async () => {
    const id = (await jobRow('plain')).id;
    const html = (await page(`/job/${id}`)).html;
    assert.match(html, /action="\/job\/\d+\/pause"/);
    assert.doesNotMatch(html, /id="resume"/);
    const refused = await form(`/job/${id}/pause`, {});
    assert.equal(refused.status, 403);
    assert.equal((await jobRow('plain')).paused_at, null);

    const token = await csrfTokenOf(`/job/${id}`);
    const ok = await form(`/job/${id}/pause`, { _csrf: token });
    assert.equal(ok.status, 303);
    assert.equal(ok.headers.get('location'), `/job/${id}?paused=1`);
    const row = await jobRow('plain');
    assert.ok(row.paused_at);
    assert.equal(row.paused_by, 'admin from 127.0.0.1');
    const shown = (await page(`/job/${id}?paused=1`)).html;
    assert.match(shown, /id="paused-note"/);
    assert.match(shown, /by admin from 127\.0\.0\.1/);
    assert.match(shown, /id="resume"/);
    assert.equal((await form(`/job/${id}/resume`, { _csrf: token })).status, 303);
    assert.equal((await jobRow('plain')).paused_at, null);
    assert.equal((await form('/job/999999/pause', { _csrf: token })).status, 404);
  });

  test('the category buttons on / pause and resume the category, CSRF-protected, keeping the filter', async () => {
    const cat = await tdb.db('categories').where('name', 'pol').first();
    const html = (await page('/')).html;
    assert.match(html, new RegExp(`action="/categories/${cat.id}/pause"`));
    assert.equal((await form(`/categories/${cat.id}/pause`, {})).status, 403);
    assert.equal((await jobRow('backup')).paused_at, null);
    const token = await csrfTokenOf('/');
    const ok = await form(`/categories/${cat.id}/pause`, { _csrf: token, q: 'back' });
    assert.equal(ok.status, 303);
    assert.equal(ok.headers.get('location'), '/?q=back');
    assert.ok((await jobRow('backup')).paused_at);
    const after = (await page('/')).html;
    assert.match(after, /class="flag paused"/);
    assert.match(after, new RegExp(`action="/categories/${cat.id}/resume"`));
    assert.equal((await form(`/categories/${cat.id}/resume`, { _csrf: token })).status, 303);
    assert.equal((await jobRow('backup')).paused_at, null);
    assert.equal((await form('/categories/999999/pause', { _csrf: token })).status, 404);
  });
});

describe('policies visible', () => {
  test('GET /api/jobs/<id> and GET /api/jobs give the effective policies, defaults included, as values and words', async () => {
    const backup = await jobRow('backup');
    const job = (await get(`/api/jobs/${backup.id}`)).body.data.job;
    assert.equal(job.enabled, true);
    assert.equal(job.paused_at, null);
    assert.deepEqual(job.policies, {
      overlap: 'forbid',
      catch_up: 'skip',
      catch_up_limit: 10,
      starting_deadline: 'PT2H',
      retries: { max: 2, delay: 'PT30S', backoff: 2, max_delay: 'PT15M', on: ['failed'] },
      alert_after: null,
      enabled: true,
      words: {
        overlap: 'skips an occurrence while a run is going',
        catch_up: 'after an outage or a pause, runs none of the missed occurrences',
        starting_deadline: 'not started if more than 2 h late',
        retries: 'retries twice when failed, 30 s then 1 min',
        enabled: 'enabled',
      },
    });
    const list = (await get('/api/jobs?per_page=100')).body.data.jobs;
    const plain = list.find((j: Body) => j.name === 'plain');
    assert.equal(plain.policies.overlap, 'allow');
    assert.equal(plain.policies.catch_up, 'once');
    assert.equal(plain.policies.retries, null);
    assert.equal(plain.policies.words.retries, 'never retried');
    // The original fields are all still there.
    for (const f of ['id', 'category_id', 'name', 'command', 'next_run', 'last_run_status', 'runs'])
      assert.ok(f in plain, f);
  });

  test('the job page shows the policies in words and "disabled by its file" apart from the pause', async () => {
    const next = structuredClone(POLICED) as Body;
    next.jobs[1].enabled = false;
    await put('pol', next);
    const plain = await jobRow('plain');
    const html = (await page(`/job/${plain.id}`)).html;
    assert.match(html, /id="disabled-note"/);
    assert.doesNotMatch(html, /id="paused-note"/);
    assert.match(html, /class="flag disabled"/);
    assert.match(html, /starts every occurrence, even while a run is going/);
    const backup = (await page(`/job/${(await jobRow('backup')).id}`)).html;
    assert.match(backup, /skips an occurrence while a run is going/);
    assert.match(backup, /retries twice when failed, 30 s then 1 min/);
    assert.match(backup, /not started if more than 2 h late/);
    assert.doesNotMatch(backup, /id="disabled-note"/);
    await put('pol', POLICED);
  });
});

describe('skipped, missed and retry runs', () => {
  let jobId: number;
  let first: string;
  let second: string;
  let retry: string;
  let skipped: string;
  let missed: string;

  before(async () => {
    jobId = (await jobRow('backup')).id;
    const t = Date.now() - 600_000;
    first = await insertRun(jobId, {
      status: 'failed',
      return_code: 1,
      host: 'h1',
      queued_at: new Date(t),
      started_at: new Date(t),
      finished_at: new Date(t + 1000),
    });
    second = await insertRun(jobId, {
      status: 'failed',
      return_code: 1,
      host: 'h1',
      triggered_by: 'retry',
      attempt: 2,
      first_run_id: first,
      queued_at: new Date(t + 2000),
      started_at: new Date(t + 31_000),
      finished_at: new Date(t + 32_000),
    });
    skipped = await insertRun(jobId, {
      status: 'skipped',
      reason: `overlap forbid: run ${second} was not final <script>alert(1)</script>`,
      queued_at: new Date(t + 20_000),
      finished_at: new Date(t + 20_000),
    });
    missed = await insertRun(jobId, {
      status: 'missed',
      reason: 'not started within its starting deadline (2 h late)',
      missed: 3,
      queued_at: new Date(t + 25_000),
      finished_at: new Date(t + 25_000),
    });
    retry = await insertRun(jobId, {
      status: 'queued',
      triggered_by: 'retry',
      attempt: 3,
      first_run_id: first,
      not_before: new Date(Date.now() + 60_000),
      queued_at: new Date(t + 33_000),
    });
  });

  test('a job whose newest run is a queued retry reads "retrying (3 of 3)" on its page, on /, in the API and in /api/live', async () => {
    const api = (await get(`/api/jobs/${jobId}`)).body.data.job;
    assert.equal(api.status, 'retrying (3 of 3)');
    const list = (await get(`/api/jobs?id=${jobId}`)).body.data.jobs[0];
    assert.equal(list.status, 'retrying (3 of 3)');
    const live = (await get(`/api/live?job=${jobId}`)).body.data.jobs[jobId];
    assert.equal(live.status, 'retrying (3 of 3)');
    const html = (await page(`/job/${jobId}`)).html;
    assert.match(html, /data-status="retrying \(3 of 3\)"/);
    assert.match(html, /badge st-retrying">retrying \(3 of 3\)/);
    assert.match((await page('/')).html, /retrying \(3 of 3\)/);
  });

  test('the job page and GET /api/jobs/<id> list skipped, missed and retry runs with their reasons and attempts, escaped', async () => {
    const runs = (await get(`/api/jobs/${jobId}`)).body.data.job.runs;
    const byId = new Map(runs.map((r: Body) => [r.id, r]));
    const s = byId.get(skipped) as Body;
    assert.equal(s.status, 'skipped');
    assert.match(s.reason, /overlap forbid/);
    assert.equal(s.host, null);
    const m = byId.get(missed) as Body;
    assert.equal(m.status, 'missed');
    assert.equal(m.missed, 3);
    const r = byId.get(second) as Body;
    assert.equal(r.triggered_by, 'retry');
    assert.equal(r.attempt, 2);
    assert.equal(r.attempts, 3);
    assert.equal(r.first_run_id, first);
    const html = (await page(`/job/${jobId}`)).html;
    assert.match(html, /badge st-skipped">skipped/);
    assert.match(html, /badge st-missed">missed/);
    assert.match(html, /retry <span class="muted">\(attempt 2 of 3\)/);
    assert.match(html, /not started within its starting deadline \(2 h late\)/);
    assert.match(html, /&lt;script&gt;alert\(1\)&lt;\/script&gt;/);
    assert.doesNotMatch(html, /<script>alert/);
  });

  test('the run page shows the attempt "2 of 3", the first run and the reason', async () => {
    const html = (await page(`/run/${second}`)).html;
    assert.match(html, /data-field="attempt">2 of 3/);
    assert.match(html, new RegExp(`href="/run/${first}"`));
    const m = (await page(`/run/${missed}`)).html;
    assert.match(m, /not started within its starting deadline/);
    assert.match(m, /3 occurrences/);
    assert.match((await page(`/run/${retry}`)).html, /Not before/);
  });

  test("/failures puts a job's failed attempts on one line, counted, linking the latest", async () => {
    const other = await insertRun(jobId, {
      status: 'timed_out',
      queued_at: new Date(Date.now() - 900_000),
      finished_at: new Date(Date.now() - 899_000),
    });
    const html = (await page('/failures')).html;
    const line = new RegExp(`<tr data-job-id="${jobId}">[\\s\\S]*?</tr>`).exec(html)?.[0] ?? '';
    assert.match(line, new RegExp(`/run/${second}`), 'the latest failed attempt is linked');
    for (const older of [first, other])
      assert.doesNotMatch(
        html,
        new RegExp(`/run/${older}`),
        'an earlier failure is not a line of its own',
      );
    assert.match(line, /×3 since/);
    assert.match(html, /<span class="count" id="failing-jobs-count">1<\/span>/);
    assert.match(html, /1 job failed, timed out or lost a run in the last 24 hours/);
  });

  test('GET /api/runs lists runs newest first, filtered by job, status and since/until, paged', async () => {
    const all = (await get(`/api/runs?job=${jobId}&per_page=100`)).body.data.runs;
    const times = all.map((r: Body) => Date.parse(r.queued_at));
    assert.deepEqual(
      times,
      [...times].sort((a, b) => b - a),
      'newest first',
    );
    assert.ok(all.length >= 5);
    assert.equal(all[0].id, retry);
    const failed = (await get(`/api/runs?job=${jobId}&status=failed`)).body.data.runs;
    assert.deepEqual(failed.map((r: Body) => r.id).sort(), [first, second].sort());
    const two = (await get(`/api/runs?job=${jobId}&status=skipped,missed`)).body.data.runs;
    assert.deepEqual(two.map((r: Body) => r.status).sort(), ['missed', 'skipped']);
    const firstAt = all.find((r: Body) => r.id === first).queued_at;
    const since = (
      await get(
        `/api/runs?job=${jobId}&since=${firstAt}&until=${encodeURIComponent(all.find((r: Body) => r.id === second).queued_at)}`,
      )
    ).body.data.runs;
    assert.deepEqual(
      since.map((r: Body) => r.id),
      [first],
    );
    const p0 = (await get(`/api/runs?job=${jobId}&per_page=2`)).body.data.runs;
    const p1 = (await get(`/api/runs?job=${jobId}&per_page=2&page=1`)).body.data.runs;
    assert.deepEqual(
      [...p0, ...p1].map((r: Body) => r.id),
      all.slice(0, 4).map((r: Body) => r.id),
    );
    assert.equal((await get('/api/runs?per_page=1000')).body.data.runs.length <= 100, true);
  });

  test('GET /api/runs/<run_id> gives one run with its output and events; unknown 404, malformed 400', async () => {
    const r = await get(`/api/runs/${second}`);
    assert.equal(r.status, 200);
    assert.equal(r.body.data.run.id, second);
    assert.equal(r.body.data.run.attempt, 2);
    assert.equal(r.body.data.run.attempts, 3);
    assert.deepEqual(r.body.data.run.events, []);
    assert.equal((await get(`/api/runs/${'0'.repeat(32)}`)).status, 404);
    assert.equal((await get('/api/runs/nothex')).status, 400);
  });

  const BAD_QUERIES = [
    ['status=nope', /status/],
    ['job=abc', /job/],
    [`job=${Array.from({ length: 101 }, (_, i) => i + 1).join(',')}`, /at most 100/],
    ['since=yesterday', /since/],
    ['until=2024-13-45T99:00:00Z', /until/],
    ['page=-1', /page/],
    ['per_page=0', /per_page/],
    ['per_page=100&page=100000', /page/],
  ] as const;
  for (const [query, message] of BAD_QUERIES) {
    test(`GET /api/runs?${query.slice(0, 40)} answers 400 naming the parameter`, async () => {
      const r = await get(`/api/runs?${query}`);
      assert.equal(r.status, 400, JSON.stringify(r.body));
      assert.match(r.body.error.message, message);
    });
  }
});
