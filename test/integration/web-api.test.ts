import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { createTestDatabase, type TestDatabase } from '../helpers/services';
import { dumpTables, startTestWeb, type TestWeb } from '../helpers/web';
import { createDb } from '../../src/core/db';
import { parseDatabaseUrl, loadConfig } from '../../src/core/config';
import { silentLogger } from '../../src/core/logger';
import { WebServer } from '../../src/web/server';
import { newRunId } from '../../src/core/runs';

let tdb: TestDatabase;
let web: TestWeb;

interface RunJson {
  id: string;
  status: string;
  return_code: number | null;
  started_at: string;
  [field: string]: unknown;
}
interface JobJson {
  id: number;
  name: string;
  command: string;
  category_id: number;
  category: { id: number; name: string };
  interval: number | null;
  next_run: string;
  description: string | null;
  status?: string;
  runs: RunJson[];
  [field: string]: unknown;
}
/** Loosely typed answers: the tests assert the shapes. */
interface ApiBody {
  status?: string;
  added?: string[];
  changed?: string[];
  removed?: string[];
  error: { message: string; problems?: unknown[] };
  data: {
    jobs: JobJson[];
    job: JobJson;
    categories: Array<{ id: number; name: string }>;
    category: { name: string; jobs: JobJson[]; definition: unknown };
    runs: Record<string, { output_tail: string }>;
  };
}

const JSON_HEADERS = { 'content-type': 'application/json' };

async function put(
  name: string,
  body: unknown,
  query = '',
): Promise<{ status: number; body: ApiBody }> {
  const res = await fetch(`${web.url}/api/category/${encodeURIComponent(name)}${query}`, {
    method: 'PUT',
    headers: JSON_HEADERS,
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : undefined };
}

async function getJson(path: string): Promise<{ status: number; body: ApiBody; headers: Headers }> {
  const res = await fetch(`${web.url}${path}`);
  return { status: res.status, body: (await res.json()) as ApiBody, headers: res.headers };
}

async function page(path: string): Promise<{ status: number; html: string }> {
  const res = await fetch(`${web.url}${path}`);
  return { status: res.status, html: await res.text() };
}

async function insertRun(jobId: number, fields: Record<string, unknown> = {}): Promise<string> {
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
    started_at: now,
    finished_at: now,
    return_code: 0,
    host: 'runner.example',
    ...fields,
  });
  return runId;
}

const EXAMPLE = {
  category: 'example',
  jobs: [
    {
      name: 'Test Job',
      schedule: 'R/2013-05-29T00:00:00/PT1M',
      command: 'sleep 10',
      routing_key: 'slow',
    },
    {
      name: 'nightly',
      schedule: '0 3 * * *',
      command: 'backup; gzip x && rm y',
      timeout: 600,
      description: 'the nightly backup',
    },
  ],
};

before(async () => {
  tdb = await createTestDatabase();
  web = await startTestWeb(tdb.db, tdb.url, {
    CRONQ_API_BODY_LIMIT: '32kb',
    CRONQ_LOG_URL_TEMPLATE:
      'https://logs.example/search?q={run_id}&job={job_id}&from={start_time}&to={end_time}',
  });
});

after(async () => {
  await web?.stop();
  await tdb?.drop();
});

describe('web API', () => {
  test('/_status answers {"status":"OK"} while the database answers', async () => {
    const r = await getJson('/_status');
    assert.equal(r.status, 200);
    assert.deepEqual(r.body, { status: 'OK' });
  });

  test('/_status answers 503 with a reason when the database is unreachable', async () => {
    const cfg = parseDatabaseUrl('mysql://root@127.0.0.1:1/nothing');
    const db = createDb(cfg, { poolMax: 1 });
    const server = new WebServer(
      {
        db,
        config: loadConfig({ DATABASE_URL: 'mysql://root@127.0.0.1:1/nothing' }),
        logger: silentLogger(),
      },
      { port: 0, host: '127.0.0.1' },
    );
    await server.start();
    try {
      const res = await fetch(`http://127.0.0.1:${server.address()!.port}/_status`);
      assert.equal(res.status, 503);
      const body = (await res.json()) as { status: string; reason: string };
      assert.equal(body.status, 'error');
      assert.match(body.reason, /database/);
    } finally {
      await server.stop();
      await db.destroy();
    }
  });

  test('/_status answers 503 within a few seconds when the database accepts connections but never answers', async () => {
    const sockets = new Set<import('node:net').Socket>();
    const silent = net.createServer((sock) => sockets.add(sock));
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    const dbUrl = `mysql://root@127.0.0.1:${(silent.address() as { port: number }).port}/nothing`;
    const db = createDb(parseDatabaseUrl(dbUrl), { poolMax: 1 });
    const server = new WebServer(
      { db, config: loadConfig({ DATABASE_URL: dbUrl }), logger: silentLogger() },
      { port: 0, host: '127.0.0.1' },
    );
    await server.start();
    try {
      const t0 = Date.now();
      const res = await fetch(`http://127.0.0.1:${server.address()!.port}/_status`);
      assert.equal(res.status, 503);
      // The check gives up after 3 s; the bound leaves room for a loaded machine and still
      // fails well before a monitor's usual 10 s timeout, which is what the rule is for.
      assert.ok(Date.now() - t0 < 8000, `answered after ${Date.now() - t0} ms`);
      assert.match(((await res.json()) as { reason: string }).reason, /within/);
    } finally {
      await server.stop();
      for (const s of sockets) s.destroy();
      silent.close();
      await db.destroy().catch(() => undefined);
    }
  });

  test('PUT /api/category/<name> creates the category and its jobs and answers {"status":"success"}', async () => {
    const r = await put('example', EXAMPLE);
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.equal(r.body.status, 'success');
    assert.deepEqual(r.body.added, ['Test Job', 'nightly']);
    const jobs = await tdb.db('jobs').orderBy('id');
    assert.equal(jobs.length, 2);
    assert.equal(jobs[0].routing_key, 'slow');
    assert.equal(jobs[0].schedule, 'R/2013-05-29T00:00:00/PT1M');
    assert.equal(
      (jobs[0].interval as Date).getTime(),
      60_000,
      'the original interval column holds the period from 1970',
    );
    assert.equal(jobs[1].routing_key, 'default');
    assert.equal(jobs[1].interval, null);
    assert.equal(jobs[1].timeout, 600);
    assert.ok(jobs[0].next_run instanceof Date && jobs[0].next_run.getTime() > Date.now() - 5000);
  });

  test('GET /api/jobs answers {"data":{"jobs":[...]}} with the original fields and runs newest first', async () => {
    const job = await tdb.db('jobs').where('name', 'Test Job').first();
    const older = await insertRun(job.id, {
      queued_at: new Date(Date.now() - 60_000),
      status: 'failed',
      return_code: 3,
    });
    const newer = await insertRun(job.id, {
      queued_at: new Date(),
      status: 'running',
      finished_at: null,
      return_code: null,
    });
    const r = await getJson('/api/jobs');
    assert.equal(r.status, 200);
    const jobs = r.body.data.jobs;
    assert.equal(jobs.length, 2);
    const j = jobs[0];
    for (const f of [
      'id',
      'category_id',
      'category',
      'name',
      'command',
      'routing_key',
      'interval',
      'next_run',
      'last_run_start',
      'last_run_stop',
      'last_run_status',
      'current_status',
      'locked_by',
      'runs',
    ]) {
      assert.ok(f in j, `field ${f}`);
    }
    assert.deepEqual(j.category, { id: j.category_id, name: 'example' });
    assert.equal(j.interval, 60);
    assert.match(j.next_run, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/);
    assert.deepEqual(
      j.runs.map((x) => x.id),
      [newer, older],
    );
    const run = j.runs[1];
    assert.deepEqual(
      Object.keys(run)
        .filter((k) =>
          ['id', 'job_id', 'status', 'started_at', 'completed_at', 'return_code', 'host'].includes(
            k,
          ),
        )
        .sort(),
      ['completed_at', 'host', 'id', 'job_id', 'return_code', 'started_at', 'status'],
    );
    assert.equal(run.status, 'failed');
    assert.equal(run.return_code, 3);
    assert.match(run.started_at, /Z$/);
  });

  test('GET /api/jobs paginates (per_page default 10, at most 100; page from 0), sorts and filters', async () => {
    const many = {
      jobs: Array.from({ length: 25 }, (_, i) => ({
        name: `job ${String(i).padStart(2, '0')}`,
        schedule: 'PT5M'.replace('PT5M', 'R/2024-01-01T00:00:00Z/PT5M'),
        command: `echo ${i}`,
      })),
    };
    assert.equal((await put('many', many)).status, 200);
    const first = await getJson('/api/jobs?category.name=many');
    assert.equal(first.body.data.jobs.length, 10);
    const p2 = await getJson('/api/jobs?category.name=many&page=2&sort=name.asc');
    assert.deepEqual(
      p2.body.data.jobs.map((j) => j.name),
      ['job 20', 'job 21', 'job 22', 'job 23', 'job 24'],
    );
    const desc = await getJson('/api/jobs?category.name=many&per_page=3&sort=name.desc');
    assert.deepEqual(
      desc.body.data.jobs.map((j) => j.name),
      ['job 24', 'job 23', 'job 22'],
    );
    const big = await getJson('/api/jobs?per_page=500');
    assert.equal(big.status, 200);
    assert.equal(big.body.data.jobs.length, 27);
    const catId = desc.body.data.jobs[0].category_id;
    const byCat = await getJson(`/api/jobs?category.id=${catId}&per_page=100`);
    assert.equal(byCat.body.data.jobs.length, 25);
    const byId = await getJson(`/api/jobs?id=${desc.body.data.jobs[0].id}`);
    assert.deepEqual(
      byId.body.data.jobs.map((j) => j.name),
      ['job 24'],
    );
    const bad = await getJson('/api/jobs?sort=command.asc');
    assert.equal(bad.status, 400);
    assert.match(bad.body.error.message, /sort/);
  });

  test('GET /api/jobs/<id> answers {"data":{"job":...}}; an unknown id answers 404 {"error":{"message"}}', async () => {
    const job = await tdb.db('jobs').where('name', 'nightly').first();
    const r = await getJson(`/api/jobs/${job.id}`);
    assert.equal(r.status, 200);
    assert.equal(r.body.data.job.name, 'nightly');
    assert.equal(r.body.data.job.description, 'the nightly backup');
    const missing = await getJson('/api/jobs/999999');
    assert.equal(missing.status, 404);
    assert.equal(typeof missing.body.error.message, 'string');
    const junk = await getJson('/api/jobs/abc');
    assert.equal(junk.status, 404);
  });

  test('GET /api/categories lists categories (?id= filters); /api/categories/<name> gives one with a PUT-able definition', async () => {
    const all = await getJson('/api/categories');
    assert.deepEqual(
      all.body.data.categories.map((c) => c.name),
      ['example', 'many'],
    );
    const ex = all.body.data.categories[0];
    const one = await getJson(`/api/categories?id=${ex.id}`);
    assert.deepEqual(
      one.body.data.categories.map((c) => c.name),
      ['example'],
    );
    const r = await getJson('/api/categories/example');
    assert.equal(r.status, 200);
    assert.equal(r.body.data.category.name, 'example');
    assert.equal(r.body.data.category.jobs.length, 2);
    const def = r.body.data.category.definition;
    assert.equal(
      (await put('example', def, '?dry_run=1')).body.changed?.length,
      0,
      'the definition round-trips unchanged',
    );
    assert.equal((await getJson('/api/categories/nope')).status, 404);
  });

  test('a kept job keeps its id, history and next_run; a changed schedule recomputes next_run; unlisted jobs go, their runs stay', async () => {
    const before = await tdb.db('jobs').whereIn('name', ['Test Job', 'nightly']).orderBy('name');
    const [testJob, nightly] = before[0].name === 'Test Job' ? before : [before[1], before[0]];
    const runId = await insertRun(nightly.id);
    await tdb.db('jobs').where('id', testJob.id).update({ schedule_error: 'old error' });
    const r = await put('example', {
      category: 'example',
      jobs: [
        {
          name: 'Test Job',
          schedule: 'R/2020-01-01T00:00:00Z/PT1H',
          command: 'sleep 10',
          routing_key: 'slow',
        },
        { name: 'brand new', schedule: '*/5 * * * *', command: 'true' },
      ],
    });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.deepEqual(r.body.added, ['brand new']);
    assert.deepEqual(r.body.changed, ['Test Job']);
    assert.deepEqual(r.body.removed, ['nightly']);
    const kept = await tdb.db('jobs').where('id', testJob.id).first();
    assert.equal(kept.name, 'Test Job', 'matched by its exact name');
    assert.equal(kept.schedule, 'R/2020-01-01T00:00:00Z/PT1H');
    assert.equal(kept.schedule_error, null);
    assert.equal(kept.next_run.getUTCMinutes(), 0, 'next_run recomputed on the hour');
    assert.equal((kept.interval as Date).getTime(), 3600_000);
    assert.equal(await tdb.db('jobs').where('id', nightly.id).first(), undefined);
    assert.ok(
      await tdb.db('runs').where('run_id', runId).first(),
      'the removed job keeps its runs',
    );

    const nextRun = kept.next_run.getTime();
    await tdb
      .db('jobs')
      .where('id', testJob.id)
      .update({ next_run: new Date(nextRun + 7000) });
    const again = await put('example', {
      category: 'example',
      jobs: [
        {
          name: 'Test Job',
          schedule: 'R/2020-01-01T00:00:00Z/PT1H',
          command: 'sleep 20',
          routing_key: 'slow',
        },
        { name: 'brand new', schedule: '*/5 * * * *', command: 'true' },
      ],
    });
    assert.deepEqual(again.body.changed, ['Test Job']);
    const same = await tdb.db('jobs').where('id', testJob.id).first();
    assert.equal(same.command, 'sleep 20');
    assert.equal(same.next_run.getTime(), nextRun + 7000, 'an unchanged schedule keeps next_run');
  });

  test('?dry_run=1 answers what would be added, changed and removed, and changes nothing', async () => {
    const before = await dumpTables(tdb.db);
    const r = await put(
      'example',
      {
        category: 'example',
        jobs: [
          { name: 'brand new', schedule: '*/10 * * * *', command: 'true' },
          { name: 'another', schedule: '0 * * * *', command: 'x' },
        ],
      },
      '?dry_run=1',
    );
    assert.equal(r.status, 200);
    assert.deepEqual(r.body, {
      status: 'dry_run',
      added: ['another'],
      changed: ['brand new'],
      removed: ['Test Job'],
    });
    const fresh = await put(
      'not-there-yet',
      { jobs: [{ name: 'a', schedule: '0 * * * *', command: 'x' }] },
      '?dry_run=1',
    );
    assert.deepEqual(fresh.body, { status: 'dry_run', added: ['a'], changed: [], removed: [] });
    assert.equal(await dumpTables(tdb.db), before);
  });

  const BAD: Array<{
    rule: string;
    body: unknown;
    status?: number;
    path?: RegExp;
    headers?: Record<string, string>;
    name?: string;
  }> = [
    { rule: 'malformed JSON', body: '{"jobs": [', path: /JSON/ },
    { rule: 'a body that is not an object', body: '[1,2]' },
    {
      rule: 'a missing field',
      body: { jobs: [{ name: 'a', schedule: '0 * * * *' }] },
      path: /jobs\[0\]\.command/,
    },
    {
      rule: 'a bad schedule',
      body: {
        jobs: [
          { name: 'a', schedule: '0 * * * *', command: 'x' },
          { name: 'b', schedule: 'R/never/PT1M', command: 'x' },
        ],
      },
      path: /jobs\[1\]\.schedule/,
    },
    {
      rule: 'duplicate names',
      body: {
        jobs: [
          { name: 'a', schedule: '0 * * * *', command: 'x' },
          { name: 'a', schedule: '0 * * * *', command: 'y' },
        ],
      },
      path: /jobs\[1\]\.name/,
    },
    {
      rule: 'names that differ only in case or trailing spaces',
      body: {
        jobs: [
          { name: 'Backup', schedule: '0 * * * *', command: 'x' },
          { name: 'backup  ', schedule: '0 * * * *', command: 'y' },
        ],
      },
      path: /jobs\[1\]\.name/,
    },
    {
      rule: 'a wrong routing_key',
      body: {
        jobs: [{ name: 'a', schedule: '0 * * * *', command: 'x', routing_key: 'has space' }],
      },
      path: /jobs\[0\]\.routing_key/,
    },
    {
      rule: 'a category that does not match the URL',
      body: { category: 'other', jobs: [] },
      path: /category/,
    },
    {
      rule: 'an unknown field',
      body: { jobs: [{ name: 'a', schedule: '0 * * * *', command: 'x', cmd: 'y' }] },
      path: /jobs\[0\]\.cmd/,
    },
    {
      rule: 'a body over the size limit (413)',
      body: { jobs: [{ name: 'a', schedule: '0 * * * *', command: 'x'.repeat(40_000) }] },
      status: 413,
    },
    {
      rule: 'a body that is not application/json (415)',
      body: '{"jobs":[]}',
      status: 415,
      headers: { 'content-type': 'text/plain' },
    },
  ];
  for (const c of BAD) {
    test(`PUT with ${c.rule} answers ${c.status ?? 400} with a JSON error and changes nothing`, async () => {
      const before = await dumpTables(tdb.db);
      const res = await fetch(`${web.url}/api/category/${c.name ?? 'example'}`, {
        method: 'PUT',
        headers: c.headers ?? JSON_HEADERS,
        body: typeof c.body === 'string' ? c.body : JSON.stringify(c.body),
      });
      assert.equal(res.status, c.status ?? 400);
      assert.match(res.headers.get('content-type') ?? '', /application\/json/);
      const body = (await res.json()) as {
        error: { message: string; problems?: Array<{ path: string }> };
      };
      assert.equal(typeof body.error.message, 'string');
      if (c.path) assert.match(body.error.message, c.path);
      if ((c.status ?? 400) === 400 && c.rule !== 'malformed JSON')
        assert.ok(Array.isArray(body.error.problems) && body.error.problems.length > 0);
      assert.equal(await dumpTables(tdb.db), before);
    });
  }

  test('POST /api/jobs/<id>/run sets run_now for the injector; an unknown job answers 404', async () => {
    const job = await tdb.db('jobs').where('name', 'brand new').first();
    const res = await fetch(`${web.url}/api/jobs/${job.id}/run`, {
      method: 'POST',
      headers: JSON_HEADERS,
    });
    assert.equal(res.status, 200);
    assert.equal(((await res.json()) as { status: string }).status, 'success');
    assert.equal((await tdb.db('jobs').where('id', job.id).first()).run_now, 1);
    const missing = await fetch(`${web.url}/api/jobs/999999/run`, {
      method: 'POST',
      headers: JSON_HEADERS,
    });
    assert.equal(missing.status, 404);
  });

  test('an unknown /api route answers a JSON 404', async () => {
    for (const [method, path] of [
      ['GET', '/api/nothing'],
      ['POST', '/api/jobs'],
      ['DELETE', '/api/category/example'],
    ]) {
      const res = await fetch(`${web.url}${path}`, { method, headers: JSON_HEADERS });
      assert.equal(res.status, 404, `${method} ${path}`);
      assert.equal(
        typeof ((await res.json()) as { error: { message: string } }).error.message,
        'string',
      );
    }
  });

  test('SQL-looking and HTML-looking names and commands round-trip as plain text and are escaped in pages', async () => {
    const sqlName = "'; DROP TABLE jobs; --";
    const htmlName = '<script>alert(1)</script>';
    const cat = '<b>cat</b>';
    const r = await put(cat, {
      category: cat,
      jobs: [
        { name: sqlName, schedule: '0 * * * *', command: htmlName },
        {
          name: htmlName,
          schedule: '0 * * * *',
          command: sqlName,
          description: '<img src=x onerror=alert(1)>',
        },
      ],
    });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    const api = await getJson(`/api/jobs?category.name=${encodeURIComponent(cat)}&sort=id.asc`);
    assert.deepEqual(
      api.body.data.jobs.map((j) => [j.name, j.command, j.category.name]),
      [
        [sqlName, htmlName, cat],
        [htmlName, sqlName, cat],
      ],
    );
    assert.ok(await tdb.db.schema.hasTable('jobs'));
    const runId = await insertRun(api.body.data.jobs[1].id, {
      output_tail: '<script>alert(2)</script>\n',
      reason: '<i>why</i>',
      status: 'failed',
      return_code: 1,
    });
    const pages = [
      await page('/'),
      await page(`/?q=${encodeURIComponent('<script>')}`),
      await page(`/job/${api.body.data.jobs[1].id}`),
      await page(`/run/${runId}`),
      await page('/failures'),
    ];
    for (const p of pages) {
      assert.equal(p.status, 200);
      assert.doesNotMatch(p.html, /<script>alert|<img src=x|<b>cat<\/b>|<i>why/);
    }
    assert.match(pages[0].html, /&lt;script&gt;alert\(1\)&lt;\/script&gt;/);
    assert.match(pages[2].html, /&lt;img src=x onerror=alert\(1\)&gt;/);
    assert.match(pages[3].html, /&lt;script&gt;alert\(2\)&lt;\/script&gt;/);
    assert.match(pages[4].html, /&lt;i&gt;why&lt;\/i&gt;/);
  });
});

describe('at scale and under concurrency', () => {
  test('a page of 100 jobs costs a fixed number of queries, however many jobs and runs (no N+1)', async () => {
    const jobs = Array.from({ length: 120 }, (_, i) => ({
      name: `bulk ${String(i).padStart(3, '0')}`,
      schedule: '*/5 * * * *',
      command: `echo ${i}`,
    }));
    assert.equal((await put('bulk', { jobs })).status, 200);
    const ids = (await tdb.db('jobs').select('id')) as Array<{ id: number }>;
    for (const { id } of ids.slice(0, 30)) await insertRun(id);
    const seen: string[] = [];
    const onQuery = (q: { sql: string }) => seen.push(q.sql);
    tdb.db.on('query', onQuery);
    try {
      for (const path of [
        '/',
        '/?page=2',
        '/api/jobs?per_page=100',
        '/api/live?runs=1&job=' + ids.map((r) => r.id).join(','),
      ]) {
        seen.length = 0;
        const res = await fetch(`${web.url}${path}`);
        assert.equal(res.status, 200, path);
        await res.arrayBuffer();
        // `/` has one more: the overview's counts by status (one GROUP BY over the jobs).
        const most = path.startsWith('/?') || path === '/' ? 5 : 4;
        assert.ok(seen.length <= most, `${path} ran ${seen.length} queries:\n${seen.join('\n')}`);
      }
    } finally {
      tdb.db.removeListener('query', onQuery);
    }
  });

  test('/ pages through more than 100 jobs', async () => {
    const one = await page('/?q=bulk');
    const two = await page('/?q=bulk&page=2');
    assert.match(one.html, /Page 1 of 2/);
    assert.match(one.html, /bulk 099/);
    assert.doesNotMatch(one.html, /bulk 100/);
    assert.match(two.html, /bulk 100/);
    assert.match(two.html, /bulk 119/);
  });

  test('a repeated name, or the same name spelt in another Unicode form, is a 400 and no change', async () => {
    const before = await dumpTables(tdb.db);
    const r = await put('bulk', {
      jobs: [
        { name: 'Café', schedule: '0 * * * *', command: 'x' },
        { name: 'Café', schedule: '0 * * * *', command: 'y' },
      ],
    });
    assert.equal(r.status, 400);
    assert.match(r.body.error.message, /jobs\[1\]\.name/);
    const nfd = await put('bulk', {
      jobs: [{ name: 'Cafe\u0301', schedule: '0 * * * *', command: 'x' }],
    });
    assert.equal(nfd.status, 400);
    assert.match(nfd.body.error.message, /jobs\[0\]\.name: must be in Unicode normal form C/);
    assert.equal(await dumpTables(tdb.db), before);
  });

  test('two PUTs creating the same new category at once both succeed and leave one category', async () => {
    const body = { jobs: [{ name: 'racer', schedule: '0 * * * *', command: 'true' }] };
    const [a, b] = await Promise.all([put('racing', body), put('racing', body)]);
    assert.deepEqual([a.status, b.status], [200, 200]);
    const cats = await tdb.db('categories').where('name', 'racing');
    assert.equal(cats.length, 1);
    assert.equal((await tdb.db('jobs').where('category_id', cats[0].id)).length, 1);
  });
});

describe('web pages', () => {
  test('/ lists jobs grouped by category with status, schedule in words, and the filter narrows them server-side', async () => {
    const all = await page('/');
    assert.equal(all.status, 200);
    assert.match(all.html, /class="cat">example</);
    assert.match(all.html, /class="cat">many</);
    assert.match(all.html, /every 5 minutes|every 5 min/i);
    const filtered = await page('/?q=job+2');
    assert.match(filtered.html, /job 24/);
    assert.doesNotMatch(filtered.html, /job 13/);
    assert.doesNotMatch(filtered.html, /brand new/);
  });

  test('/job/<id> shows the command split on ; and &&, the schedule in words with five next occurrences, and a Run now form with a CSRF token', async () => {
    await put('split', {
      jobs: [
        {
          name: 'multi',
          schedule: 'R/2024-01-31T00:00:00Z/P1M',
          command: 'cd /srv; make && make install',
          routing_key: 'build',
          timeout: 90,
        },
      ],
    });
    const job = await tdb.db('jobs').where('name', 'multi').first();
    const p = await page(`/job/${job.id}`);
    assert.equal(p.status, 200);
    assert.match(p.html, /cd \/srv;\nmake &amp;&amp;\nmake install/);
    assert.equal(
      (p.html.match(/<ol class="upcoming">[\s\S]*?<\/ol>/)![0].match(/<li>/g) ?? []).length,
      5,
    );
    assert.match(p.html, /name="_csrf" value="[^"]+"/);
    assert.match(p.html, /build/);
    assert.equal((await page('/job/999999')).status, 404);
  });

  test('/run/<run_id> shows status, host, output and the log link with {job_id},{run_id},{start_time},{end_time} replaced', async () => {
    const job = await tdb.db('jobs').where('name', 'multi').first();
    const start = new Date('2024-03-01T10:00:00.000Z');
    const runId = await insertRun(job.id, {
      started_at: start,
      finished_at: new Date('2024-03-01T10:00:05.000Z'),
      output_tail: 'line one\nline two\n',
      host: 'box-7.example',
    });
    await tdb.db('events').insert([
      { job_id: job.id, run_id: runId, type: 'starting', datetime: start, host: 'box-7.example' },
      {
        job_id: job.id,
        run_id: runId,
        type: 'finished',
        datetime: start,
        host: 'box-7.example',
        return_code: 0,
      },
    ]);
    const p = await page(`/run/${runId}`);
    assert.equal(p.status, 200);
    assert.match(p.html, /box-7\.example/);
    // The viewer wraps each line in a span (stderr's marked); the text and its breaks stay.
    assert.match(p.html.replace(/<\/?span[^>]*>/g, ''), /line one\nline two/);
    assert.match(p.html, />starting</);
    assert.match(p.html, />finished</);
    const link = `https://logs.example/search?q=${runId}&amp;job=${job.id}&amp;from=2024-03-01T10%3A00%3A00.000Z&amp;to=2024-03-01T10%3A00%3A05.000Z`;
    assert.ok(p.html.includes(link), 'log link');
    assert.equal((await page('/run/0123456789abcdef0123456789abcdef')).status, 404);
  });

  test('/run/<run_id> of an adopted database shows a run known only from its events', async () => {
    const job = await tdb.db('jobs').where('name', 'multi').first();
    const runId = newRunId();
    await tdb.db('events').insert({
      job_id: job.id,
      run_id: runId,
      type: 'failed',
      datetime: new Date(),
      host: 'old-python-host',
    });
    const p = await page(`/run/${runId}`);
    assert.equal(p.status, 200);
    assert.match(p.html, /old-python-host/);
  });

  test('/failures groups failed, timed-out and lost runs by job, the latest failure first, a removed job unlinked', async () => {
    const job = await tdb.db('jobs').where('name', 'multi').first();
    const t = Date.now();
    for (const [status, ago] of [
      ['timed_out', 3000],
      ['lost', 1000],
      ['failed', 2000],
    ] as const)
      await insertRun(job.id, { status, finished_at: new Date(t - ago), job_name: 'multi' });
    await insertRun(job.id, { status: 'succeeded', finished_at: new Date(t) });
    // A job removed since: its failure is listed by name, with no link to a page that is gone.
    const goneId = 999_999;
    const gone = await insertRun(goneId, {
      status: 'failed',
      finished_at: new Date(t - 5000),
      job_name: 'gone-job',
    });
    // Outside the 24 h window, inside 7 days.
    await insertRun(job.id, { status: 'failed', finished_at: new Date(t - 3 * 86_400_000) });
    const p = await page('/failures');
    assert.equal(p.status, 200);
    const multi = new RegExp(`<tr data-job-id="${job.id}">[\\s\\S]*?</tr>`).exec(p.html)?.[0] ?? '';
    assert.match(multi, /×3 since/);
    const removed =
      new RegExp(`<tr data-job-id="${goneId}">[\\s\\S]*?</tr>`).exec(p.html)?.[0] ?? '';
    assert.match(removed, /gone-job <span class="muted">\(removed\)<\/span>/);
    assert.doesNotMatch(removed, new RegExp(`href="/job/${goneId}"`));
    assert.match(removed, new RegExp(`href="/run/${gone}"`));
    assert.ok(
      p.html.indexOf(`data-job-id="${job.id}"`) < p.html.indexOf(`data-job-id="${goneId}"`),
    );
    const week = await page('/failures?window=7d');
    assert.match(week.html, /×4 since/);
    for (const w of ['forever', 'toString', '__proto__', 'constructor'])
      assert.equal((await page(`/failures?window=${w}`)).status, 400, w);
    assert.equal((await page('/failures?category=x')).status, 400);
  });

  test('an unknown page answers an HTML 404', async () => {
    const p = await page('/no/such/page');
    assert.equal(p.status, 404);
    assert.match(p.html, /<html/);
  });

  test('/api/live gives the refresh script job statuses and a run with its output', async () => {
    const job = await tdb.db('jobs').where('name', 'multi').first();
    const runId = await insertRun(job.id, {
      status: 'running',
      finished_at: null,
      queued_at: new Date(Date.now() + 60_000),
      output_tail: 'partial',
    });
    const r = await getJson(`/api/live?job=${job.id}&run=${runId}`);
    assert.equal(r.status, 200);
    assert.equal(r.body.data.jobs[job.id].status, 'running');
    assert.equal(r.body.data.runs[runId].output_tail, 'partial');
  });
});

describe('formatting (pure)', () => {
  test('a command is split after each ; and && as the original admin showed it', async () => {
    const { splitCommand } = await import('../../src/web/format');
    assert.deepEqual(splitCommand('cd /srv; make && make install'), [
      'cd /srv;',
      'make &&',
      'make install',
    ]);
    assert.deepEqual(splitCommand('true'), ['true']);
    assert.deepEqual(splitCommand('a;;b'), ['a;', ';', 'b']);
    assert.deepEqual(splitCommand(''), []);
  });

  test('relative times read "3 min ago" / "in 2 h" and long spans in months and years', async () => {
    const { relativeTime } = await import('../../src/web/format');
    const now = new Date('2024-01-01T00:00:00Z');
    assert.equal(relativeTime(new Date('2023-12-31T23:57:00Z'), now), '3 min ago');
    assert.equal(relativeTime(new Date('2024-01-01T02:30:00Z'), now), 'in 2 h');
    assert.equal(relativeTime(new Date('2024-04-01T00:00:00Z'), now), 'in 3 mo');
    assert.equal(relativeTime(new Date('2027-02-01T00:00:00Z'), now), 'in 3 y');
    assert.equal(relativeTime(now, now), 'just now');
  });

  test('the log URL of a run still going ends a few seconds after now', async () => {
    const { logUrl } = await import('../../src/web/format');
    const now = new Date('2024-01-01T00:00:00Z');
    const url = logUrl(
      'https://l.example/?r={run_id}&j={job_id}&s={start_time}&e={end_time}',
      {
        job_id: 7,
        run_id: 'ab',
        started_at: new Date('2023-12-31T23:59:00Z'),
        queued_at: null,
        finished_at: null,
      },
      now,
    );
    assert.equal(
      url,
      'https://l.example/?r=ab&j=7&s=2023-12-31T23%3A59%3A00.000Z&e=2024-01-01T00%3A00%3A05.000Z',
    );
    assert.equal(
      logUrl(
        undefined,
        { job_id: 7, run_id: 'ab', started_at: null, queued_at: null, finished_at: null },
        now,
      ),
      null,
    );
  });
});
