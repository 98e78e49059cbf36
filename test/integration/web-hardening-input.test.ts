/**
 * The web against hostile input, over real HTTP against a real database:
 * /api/live bounds, exact names agreed by cronq-validator, the dry run and
 * PUT, reserved routing keys, byte sizes, malformed URLs, invisible
 * characters shown visibly, and error logs without SQL or commands.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import pino from 'pino';
import { validateFile } from '../../src/cli/validator';
import { loadConfig } from '../../src/core/config';
import { newRunId } from '../../src/core/runs';
import { WebServer } from '../../src/web/server';
import { createTestDatabase, type TestDatabase } from '../helpers/services';
import { runCommand } from '../helpers/processes';
import { dumpTables, startTestWeb, type TestWeb } from '../helpers/web';

let tdb: TestDatabase;
let web: TestWeb;
let dir: string;

before(async () => {
  tdb = await createTestDatabase();
  web = await startTestWeb(tdb.db, tdb.url);
  dir = mkdtempSync(path.join(tmpdir(), 'cronq-web-hardening-'));
});

after(async () => {
  await web?.stop();
  await tdb?.drop();
});

async function put(
  category: string,
  body: unknown,
  query = '',
): Promise<{ status: number; body: ApiAnswer }> {
  const res = await fetch(`${web.url}/api/category/${encodeURIComponent(category)}${query}`, {
    method: 'PUT',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  const text = await res.text();
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    // keep the text
  }
  return { status: res.status, body: parsed as ApiAnswer };
}

/** The fields of the API's answers these tests read. */
interface ApiAnswer {
  added: string[];
  changed: string[];
  removed: string[];
  error: { message: string };
  data: {
    category: { name: string; jobs: Array<{ name: string }> };
    runs: Record<string, { output_tail: string; output_cut: boolean }>;
  };
}

let fileNo = 0;
/** cronq-validator's own check of a file (the function the command runs). */
function validatorProblems(doc: unknown, category?: string): string[] {
  const f = path.join(dir, `f${fileNo++}.json`);
  writeFileSync(f, JSON.stringify(doc));
  const r = validateFile(f, category);
  assert.equal(r.kind, 'checked');
  return r.kind === 'checked' ? r.problems.map((p) => `${p.path}: ${p.message}`) : [];
}

const job = (name: string, extra: Record<string, unknown> = {}) => ({
  name,
  schedule: '0 * * * *',
  command: `echo ${name}`,
  ...extra,
});

async function jobNamesOf(category: string): Promise<string[]> {
  const rows = (await tdb
    .db('jobs')
    .join('categories', 'categories.id', 'jobs.category_id')
    .whereRaw('categories.name = ?', [category])
    .select('jobs.name')) as Array<{ name: string }>;
  return rows.map((r) => r.name).sort();
}

describe('names: cronq-validator, the dry run and PUT apply one rule (exact)', () => {
  // Pairs the database's default collation (utf8mb4_unicode_ci) took for one name.
  const distinct: Array<[string, string]> = [
    ['aß', 'as'],
    ['aß', 'ass'],
    ['ı', 'I'],
    ['i', 'I'],
    ['Backup', 'backup'],
    ['canary', 'Canary'],
    ['café', 'cafe'],
    ['Å', 'å'],
    ['ǅ', 'ǆ'],
  ];
  distinct.forEach(([a, b], i) => {
    test(`"${a}" and "${b}" are two jobs everywhere`, async () => {
      const category = `pair${i}`;
      const doc = { category, jobs: [job(a), job(b)] };
      assert.deepEqual(validatorProblems(doc, category), [], 'the validator accepts the file');
      const dry = await put(category, doc, '?dry_run=1');
      assert.equal(dry.status, 200, JSON.stringify(dry.body));
      assert.deepEqual(dry.body.added, [a, b]);
      const real = await put(category, doc);
      assert.equal(real.status, 200, JSON.stringify(real.body));
      assert.deepEqual(real.body.added, dry.body.added, 'the PUT does what the dry run said');
      assert.deepEqual(await jobNamesOf(category), [a, b].sort());
      const again = await put(category, doc, '?dry_run=1');
      assert.deepEqual([again.body.added, again.body.changed], [[], []], 'each name finds itself');
    });
  });

  // Names that would look like another name are refused by all three alike.
  const refused: Array<[string, RegExp]> = [
    ['backup ', /white space/],
    [' backup', /white space/],
    ['backup\u00a0', /white space/],
    ['Cafe\u0301', /normal form C/],
    ['back\u200bup', /U\+200B/],
    ['evil\u202egnp.exe', /U\+202E/],
    ['a\u2066b', /U\+2066/],
    ['line\u2028sep', /U\+2028/],
    ['bom\ufeff', /U\+FEFF/],
    ['tab\there', /U\+0009/],
    ['c1\u0085', /U\+0085/],
    ['nul\u0000', /U\+0000/],
  ];
  refused.forEach(([name, why], i) => {
    test(`job name ${JSON.stringify(name)} is refused by all three, nothing changes`, async () => {
      const category = `bad${i}`;
      const doc = { category, jobs: [job('ok'), job(name)] };
      const local = validatorProblems(doc, category);
      assert.equal(local.length, 1, local.join('\n'));
      assert.match(local[0]!, /^jobs\[1\]\.name: /);
      assert.match(local[0]!, why);
      const before = await dumpTables(tdb.db);
      for (const q of ['?dry_run=1', '']) {
        const r = await put(category, doc, q);
        assert.equal(r.status, 400, `${q}: ${JSON.stringify(r.body)}`);
        assert.match(r.body.error.message, /^jobs\[1\]\.name: /);
      }
      assert.equal(await dumpTables(tdb.db), before);
    });
  });

  test('a file of 2,000 bad jobs is refused with the first 100 problems and a count of the rest', async () => {
    const category = 'manybad';
    const doc = {
      category,
      jobs: Array.from({ length: 2000 }, (_, i) => ({ ...job(`j${i}`), schedule: 'nonsense' })),
    };
    const before = await dumpTables(tdb.db);
    const r = await put(category, doc);
    assert.equal(r.status, 400);
    const problems = (r.body.error as { problems?: Array<{ path: string; message: string }> })
      .problems!;
    assert.equal(problems.length, 101);
    assert.match(problems[0]!.path, /^jobs\[0\]\.schedule$/);
    assert.match(problems[100]!.message, /^and 1900 more problems not listed/);
    assert.equal(await dumpTables(tdb.db), before);
  });

  test('a misspelt dry run (DRY_RUN=1, dryrun=1, dry-run=1) is refused with 400 naming it, and applies nothing', async () => {
    const category = 'misspelt';
    const doc = { category, jobs: [job('one')] };
    const before = await dumpTables(tdb.db);
    for (const q of ['?DRY_RUN=1', '?dryrun=1', '?dry-run=1', '?dry_run=1&force=1']) {
      const r = await put(category, doc, q);
      assert.equal(r.status, 400, `${q}: ${JSON.stringify(r.body)}`);
      assert.match(r.body.error.message, /not a parameter of PUT/);
    }
    assert.equal(await dumpTables(tdb.db), before);
    const dry = await put(category, doc, '?dry_run=1');
    assert.equal(dry.status, 200, JSON.stringify(dry.body));
    assert.equal(await dumpTables(tdb.db), before);
    // Past the 1,000 pairs a default query parser keeps: still read, still a dry run.
    const late = await put(category, doc, `?${'&'.repeat(1000)}dry_run=1`);
    assert.equal(late.status, 200, JSON.stringify(late.body));
    assert.equal(await dumpTables(tdb.db), before);
  });

  test('the cronq-validator command and PUT refuse the same file for the same names, with the same problems', async () => {
    const category = 'agree';
    const doc = { category, jobs: [job('Backup'), job('backup '), job('backup'), job('Backup')] };
    const f = path.join(dir, 'agree.json');
    writeFileSync(f, JSON.stringify(doc));
    const local = await runCommand('cronq-validator', { args: ['--config', f] });
    assert.equal(local.code, 1, local.stdout + local.stderr);
    const expected = [
      'jobs[1].name: must not begin or end with white space',
      'jobs[3].name: duplicates the name of jobs[0] ("Backup")',
    ];
    assert.deepEqual(local.stdout.trim().split('\n'), expected);
    const before = await dumpTables(tdb.db);
    for (const q of ['?dry_run=1', '']) {
      const r = await put(category, doc, q);
      assert.equal(r.status, 400, `${q}: ${JSON.stringify(r.body)}`);
      const problems = (r.body.error as { problems?: Array<{ path: string; message: string }> })
        .problems;
      assert.deepEqual(
        problems?.map((p) => `${p.path}: ${p.message}`),
        expected,
      );
    }
    assert.equal(await dumpTables(tdb.db), before);

    // Without the blank-ended name, both accept it: "Backup" and "backup" are two jobs.
    const fixed = { category, jobs: [job('Backup'), job('backup')] };
    writeFileSync(f, JSON.stringify(fixed));
    assert.equal((await runCommand('cronq-validator', { args: ['--config', f] })).code, 0);
    const r = await put(category, fixed);
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.deepEqual(await jobNamesOf(category), ['Backup', 'backup']);
  });

  test('PUT /api/category/Canary does not replace "canary": category names are exact too', async () => {
    assert.equal((await put('canary', { jobs: [job('one')] })).status, 200);
    const upper = await put('Canary', { jobs: [job('two')] });
    assert.equal(upper.status, 200, JSON.stringify(upper.body));
    assert.deepEqual(upper.body.removed, []);
    assert.deepEqual(await jobNamesOf('canary'), ['one']);
    assert.deepEqual(await jobNamesOf('Canary'), ['two']);
    const got = (await (await fetch(`${web.url}/api/categories/canary`)).json()) as ApiAnswer;
    assert.equal(got.data.category.name, 'canary');
    assert.deepEqual(
      got.data.category.jobs.map((j: { name: string }) => j.name),
      ['one'],
    );
    const bad = await put('canary ', { jobs: [job('x')] });
    assert.equal(bad.status, 400);
    assert.match(bad.body.error.message, /white space/);
  });
});

describe('reserved routing keys', () => {
  const reserved = [
    'cronq_results',
    'CRONQ_RESULTS',
    'cronq_results_dead',
    'cronq_results_x',
    'cronq_jobs',
  ];
  for (const key of reserved) {
    test(`routing_key "${key}" is refused by cronq-validator, the dry run and PUT`, async () => {
      const doc = { category: 'rk', jobs: [job('j', { routing_key: key })] };
      const local = validatorProblems(doc, 'rk');
      assert.equal(local.length, 1);
      assert.match(local[0]!, /^jobs\[0\]\.routing_key: .*reserved for CronQ/);
      const before = await dumpTables(tdb.db);
      for (const q of ['?dry_run=1', '']) {
        const r = await put('rk', doc, q);
        assert.equal(r.status, 400, JSON.stringify(r.body));
        assert.match(r.body.error.message, /routing_key: .*reserved/);
      }
      assert.equal(await dumpTables(tdb.db), before);
    });
  }

  test('ordinary keys, including other cronq_ queues, are accepted', async () => {
    const doc = {
      jobs: [
        job('d', { routing_key: 'default' }),
        job('s', { routing_key: 'slow' }),
        job('g', { routing_key: 'cronq_gpu' }),
      ],
    };
    assert.deepEqual(validatorProblems(doc), []);
    assert.equal((await put('rk-ok', doc)).status, 200);
  });
});

describe('sizes and URLs', () => {
  const sizes: Array<[string, string, number]> = [
    ['65,535 three-byte characters', '€'.repeat(65535), 400],
    ['16,384 four-byte characters (65,536 bytes)', '😀'.repeat(16384), 400],
    ['65,536 one-byte characters', 'x'.repeat(65536), 400],
    ['21,845 three-byte characters (65,535 bytes)', '€'.repeat(21845), 200],
    ['a lone surrogate', 'echo \ud800', 400],
  ];
  for (const [label, command, status] of sizes) {
    test(`a command of ${label}: ${status}, agreed by the validator and the dry run`, async () => {
      const doc = { jobs: [job('big', { command })] };
      const local = validatorProblems(doc);
      assert.equal(local.length === 0, status === 200, local.join('\n'));
      const before = await dumpTables(tdb.db);
      const dry = await put('sizes', doc, '?dry_run=1');
      assert.equal(dry.status, status, JSON.stringify(dry.body).slice(0, 300));
      const r = await put('sizes', doc);
      assert.equal(r.status, status, JSON.stringify(r.body).slice(0, 300));
      if (status === 400) {
        assert.match(
          r.body.error.message,
          /^jobs\[0\]\.command: (is \d+ bytes|is not valid Unicode|must NOT have more than 65535)/,
        );
        assert.equal(await dumpTables(tdb.db), before);
      } else {
        const row = await tdb.db('jobs').where('name', 'big').first();
        assert.equal(row.command, command, 'stored whole');
      }
    });
  }

  test('a malformed % escape in the URL is a 400 with a clear error, not a 500', async () => {
    const before = await dumpTables(tdb.db);
    for (const p of [
      '/job/%E0%A4%A',
      '/job/%ZZ',
      '/run/%C0%AF',
      '/api/categories/%ZZ',
      '/api/categories/%E0%A4%A',
      '/api/jobs/%FF',
    ]) {
      const res = await fetch(`${web.url}${p}`, { headers: { accept: 'application/json' } });
      assert.equal(res.status, 400, p);
      const body = (await res.json()) as ApiAnswer;
      assert.match(body.error.message, /malformed % escape/, p);
    }
    const w = await fetch(`${web.url}/api/category/%E0%A4%A`, {
      method: 'PUT',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ jobs: [job('x')] }),
    });
    assert.equal(w.status, 400);
    assert.equal(await dumpTables(tdb.db), before);
  });
});

describe('/api/live and the run page read a bounded amount', () => {
  let runId: string;
  const BIG = 3 * 1024 * 1024;

  before(async () => {
    assert.equal((await put('live', { jobs: [job('chatty')] })).status, 200);
    const jobId = (await tdb.db('jobs').where('name', 'chatty').first()).id;
    runId = newRunId();
    const output = `${'x'.repeat(BIG - 4)}TAIL`;
    await tdb.db('runs').insert({
      run_id: runId,
      job_id: jobId,
      job_name: 'chatty',
      scheduled_for: new Date(),
      status: 'succeeded',
      queued_at: new Date(),
      started_at: new Date(),
      finished_at: new Date(),
      return_code: 0,
      output_tail: output,
    });
  });

  test('repeated run ids are answered once, with the end of the output only', async () => {
    const ids = Array.from({ length: 60 }, () => runId).join(',');
    const res = await fetch(`${web.url}/api/live?run=${ids}`);
    assert.equal(res.status, 200);
    const text = await res.text();
    assert.ok(text.length < 200_000, `the answer is ${text.length} characters`);
    const body = JSON.parse(text);
    assert.deepEqual(Object.keys(body.data.runs), [runId]);
    const run = body.data.runs[runId];
    assert.equal(run.output_tail.length, 65536);
    assert.ok(run.output_tail.endsWith('TAIL'));
    assert.equal(run.output_cut, true);
  });

  test('more distinct ids than the bound is a 400, not a bigger query', async () => {
    const many = Array.from({ length: 11 }, (_, i) => i.toString(16).padStart(32, '0')).join(',');
    const res = await fetch(`${web.url}/api/live?run=${many}`);
    assert.equal(res.status, 400);
    assert.match(((await res.json()) as ApiAnswer).error.message, /at most 200 jobs and 10 runs/);
    const jobs = Array.from({ length: 201 }, (_, i) => i + 1).join(',');
    assert.equal((await fetch(`${web.url}/api/live?job=${jobs}`)).status, 400);
    const repeated = Array.from({ length: 500 }, () => '1').join(',');
    assert.equal((await fetch(`${web.url}/api/live?job=${repeated}`)).status, 200);
  });

  test('the run page shows the end of a large output and says it was cut', async () => {
    const res = await fetch(`${web.url}/run/${runId}`);
    assert.equal(res.status, 200);
    const html = await res.text();
    assert.ok(html.length < 200_000, `the page is ${html.length} characters`);
    assert.match(html, /TAIL\n<\/span><\/pre>/);
    assert.match(html, /Only the last 65536 characters are shown/);
  });
});

describe('invisible characters are shown visibly in the admin', () => {
  const HIDDEN = [
    '\u202a',
    '\u202b',
    '\u202c',
    '\u202d',
    '\u202e',
    '\u2066',
    '\u2067',
    '\u2068',
    '\u2069',
    '\u200b',
    '\u200c',
    '\u200d',
    '\u200e',
    '\u200f',
    '\u2028',
    '\u2029',
    '\ufeff',
    '\u0000',
    '\u0007',
    '\u001b',
    '\u007f',
    '\u0085',
    '\u009b',
  ];
  const code = (c: string) =>
    `⟨U+${c.codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0')}⟩`;
  let jobId: number;
  let runId: string;

  before(async () => {
    // Rows as an older version or another tool could have written them (PUT now refuses such names).
    const [catId] = await tdb.db('categories').insert({ name: `cat\u202eegami` });
    [jobId] = await tdb.db('jobs').insert({
      name: `report\u202efdp.exe`,
      category_id: catId,
      command: `echo ok; ${HIDDEN.join('x')} rm -rf /tmp/x\u202e && true`,
      description: `desc\u2067hidden\u2069`,
      schedule: '0 * * * *',
      routing_key: 'default',
      run_now: 0,
    });
    runId = newRunId();
    await tdb.db('runs').insert({
      run_id: runId,
      job_id: jobId,
      job_name: `report\u202efdp.exe`,
      scheduled_for: new Date(),
      status: 'failed',
      queued_at: new Date(),
      finished_at: new Date(),
      return_code: 1,
      host: `host\u200b1`,
      output_tail: `line1\n\u001b[31mred\u001b[0m\u202eevil\nline3`,
    });
  });

  function assertNoHidden(html: string, where: string) {
    for (const c of HIDDEN) assert.ok(!html.includes(c), `${where}: raw ${code(c)} in the HTML`);
  }

  test('the job page, the list, the run page and the failures page escape every one', async () => {
    const pages: Array<[string, string[]]> = [
      [`/job/${jobId}`, HIDDEN.map(code)],
      ['/', [code('\u202e')]],
      [`/?q=report`, [code('\u202e')]],
      [`/run/${runId}`, [code('\u001b'), code('\u202e'), code('\u200b')]],
      ['/failures', [code('\u202e')]],
    ];
    for (const [p, shown] of pages) {
      const res = await fetch(`${web.url}${p}`);
      assert.equal(res.status, 200, p);
      const html = await res.text();
      assertNoHidden(html, p);
      for (const s of shown) assert.ok(html.includes(s), `${p}: ${s} shown`);
    }
    const run = await (await fetch(`${web.url}/run/${runId}`)).text();
    assert.match(
      run.replace(/<\/?span[^>]*>/g, ''),
      /line1\n⟨U\+001B⟩\[31mred/,
      'line breaks in output stay line breaks',
    );
  });
});

describe('error logs', () => {
  test('a database error is logged with a bounded message and code, without the SQL or the command', async () => {
    const lines: string[] = [];
    const sink = new Writable({
      write(chunk, _enc, cb) {
        lines.push(String(chunk));
        cb();
      },
    });
    const logger = pino({ level: 'debug' }, sink);
    const server = new WebServer(
      { db: tdb.db, config: loadConfig({ DATABASE_URL: tdb.url }), logger },
      { port: 0, host: '127.0.0.1' },
      1000,
    );
    await server.start();
    await tdb.db.raw(
      "CREATE TRIGGER refuse_jobs BEFORE INSERT ON jobs FOR EACH ROW SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'refused by a test trigger'",
    );
    try {
      const secret = `echo SECRET-COMMAND-${'s'.repeat(500)}`;
      const res = await fetch(`http://127.0.0.1:${server.address()!.port}/api/category/logged`, {
        method: 'PUT',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ jobs: [job('leaky', { command: secret, description: 'PRIVATE' })] }),
      });
      assert.equal(res.status, 500);
      assert.deepEqual(await res.json(), { error: { message: 'internal error' } });
      const failed = lines.map((l) => JSON.parse(l)).filter((l) => l.msg === 'request failed');
      assert.equal(failed.length, 1, lines.join(''));
      const logged = JSON.stringify(failed[0]);
      assert.ok(!logged.includes('SECRET-COMMAND'), `the command is not logged: ${logged}`);
      assert.ok(!logged.includes('PRIVATE'), 'nor the description');
      assert.ok(!/insert into/i.test(logged), 'nor the SQL statement');
      assert.ok(logged.length < 4000, `a bounded line (${logged.length})`);
      assert.equal(failed[0].errno, 1644);
      assert.match(failed[0].err, /refused by a test trigger/);
    } finally {
      await tdb.db.raw('DROP TRIGGER IF EXISTS refuse_jobs');
      await server.stop();
    }
  });
});

describe('a large category is answered with a bounded number of runs', () => {
  test('GET /api/categories/<name> lists at most 2,000 runs in all', async () => {
    const jobs = Array.from({ length: 400 }, (_, i) => job(`j${i}`));
    assert.equal((await put('large', { jobs })).status, 200);
    const rows = (await tdb
      .db('jobs')
      .join('categories', 'categories.id', 'jobs.category_id')
      .where('categories.name', 'large')
      .select('jobs.id', 'jobs.name')) as Array<{ id: number; name: string }>;
    const runs = rows.flatMap((r) =>
      Array.from({ length: 10 }, (_, k) => ({
        run_id: newRunId(),
        job_id: r.id,
        job_name: r.name,
        scheduled_for: new Date(Date.UTC(2024, 0, 1, 0, k)),
        status: 'succeeded',
        queued_at: new Date(Date.UTC(2024, 0, 1, 0, k)),
      })),
    );
    for (let i = 0; i < runs.length; i += 500) await tdb.db('runs').insert(runs.slice(i, i + 500));
    const res = await fetch(`${web.url}/api/categories/large`);
    assert.equal(res.status, 200);
    const body = (await res.json()) as {
      data: { category: { jobs: Array<{ runs: unknown[] }> } };
    };
    const listed = body.data.category.jobs.reduce((n, j) => n + j.runs.length, 0);
    assert.equal(body.data.category.jobs.length, 400);
    assert.ok(listed <= 2000, `${listed} runs listed`);
    assert.ok(body.data.category.jobs.every((j) => j.runs.length === 5));
  });
});
