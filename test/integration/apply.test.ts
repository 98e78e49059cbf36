/**
 * `cronq apply` as a real process against a real cronq-web: the plan it
 * prints, the changes it makes, the token, and each way it refuses.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createTestDatabase, waitFor, type TestDatabase } from '../helpers/services';
import { runCommand, startCommand, type Proc } from '../helpers/processes';

const TOKEN = 'apply-test-token-123';
let t: TestDatabase;
let web: Proc;
let port: number;
let dir: string;

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port: p } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(p));
    });
  });
}

function file(name: string, doc: unknown): string {
  const p = path.join(dir, name);
  writeFileSync(p, typeof doc === 'string' ? doc : JSON.stringify(doc));
  return p;
}

const apply = (args: string[], env: Record<string, string> = {}) =>
  runCommand('cronq', {
    args: ['apply', ...args],
    env: { CRONQ_API_TOKEN: TOKEN, PORT: String(port), DATABASE_URL: t.url, ...env },
  });

async function jobsOf(category: string): Promise<Array<{ name: string; command: string }>> {
  return (await t
    .db('jobs')
    .join('categories', 'categories.id', 'jobs.category_id')
    .where('categories.name', category)
    .select('jobs.name', 'jobs.command')
    .orderBy('jobs.name')) as Array<{
    name: string;
    command: string;
  }>;
}

const job = (name: string, command = `echo ${name}`) => ({
  name,
  schedule: 'R/2024-01-01T00:00:00Z/PT1H',
  command,
});

before(async () => {
  t = await createTestDatabase();
  dir = mkdtempSync(path.join(tmpdir(), 'cronq-apply-'));
  port = await freePort();
  web = startCommand('cronq-web', {
    env: {
      DATABASE_URL: t.url,
      PORT: String(port),
      CRONQ_API_TOKEN: TOKEN,
      CRONQ_LOG_LEVEL: 'warn',
    },
  });
  await waitFor(async () => (await fetch(`http://127.0.0.1:${port}/_status`)).ok, {
    timeoutMs: 30_000,
    message: `cronq-web on ${port}; output:\n${web.output()}`,
  });
});
after(async () => {
  await web?.stop();
  await t?.drop();
  rmSync(dir, { recursive: true, force: true });
});

describe('cronq apply against a running web admin', () => {
  test('--dry-run prints the plan and changes nothing', async () => {
    const f = file('ci.json', { category: 'ci', jobs: [job('alpha'), job('beta'), job('gamma')] });
    const r = await apply([f, '--dry-run']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(
      r.stdout,
      `plan for category "ci" at http://127.0.0.1:${port}:\n  + add     alpha\n  + add     beta\n  + add     gamma\ndry run: nothing changed\n`,
    );
    assert.deepEqual(await jobsOf('ci'), []);
  });

  test('applying creates the jobs and prints what it did', async () => {
    const f = file('ci.json', { category: 'ci', jobs: [job('alpha'), job('beta'), job('gamma')] });
    const r = await apply([f]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /\+ add {5}alpha\n/);
    assert.match(r.stdout, /applied: 3 added, 0 changed, 0 removed\n$/);
    assert.deepEqual(
      (await jobsOf('ci')).map((j) => j.name),
      ['alpha', 'beta', 'gamma'],
    );
  });

  test('a changed file shows added, changed and removed jobs, and the category then matches the file', async () => {
    const f = file('ci.json', {
      category: 'ci',
      jobs: [job('alpha', 'echo changed'), job('beta'), job('delta')],
    });
    const r = await apply([f]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(
      r.stdout,
      `plan for category "ci" at http://127.0.0.1:${port}:\n  + add     delta\n  ~ change  alpha\n  - remove  gamma\napplied: 1 added, 1 changed, 1 removed\n`,
    );
    assert.deepEqual(await jobsOf('ci'), [
      { name: 'alpha', command: 'echo changed' },
      { name: 'beta', command: 'echo beta' },
      { name: 'delta', command: 'echo delta' },
    ]);
  });

  test('a change of policy fields is a change of the job, naming the fields', async () => {
    const base = { category: 'pol', jobs: [job('one'), job('two')] };
    assert.equal((await apply([file('pol.json', base)])).code, 0);
    const changed = {
      category: 'pol',
      jobs: [
        { ...job('one'), overlap: 'forbid', retries: { max: 2 } },
        { ...job('two'), enabled: false },
      ],
    };
    const dry = await apply([file('pol.json', changed), '--dry-run']);
    assert.equal(dry.code, 0, dry.stderr);
    assert.equal(
      dry.stdout,
      `plan for category "pol" at http://127.0.0.1:${port}:\n  ~ change  one (overlap, retries)\n  ~ change  two (enabled)\ndry run: nothing changed\n`,
    );
    const r = await apply([file('pol.json', changed)]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /applied: 0 added, 2 changed, 0 removed\n$/);
    const rows = await t.db('jobs').whereIn('name', ['one', 'two']).orderBy('name');
    assert.deepEqual(JSON.parse(rows[0].policies), { overlap: 'forbid', retries: { max: 2 } });
    assert.equal(rows[1].enabled, 0);
  });

  test('a change of notify targets and alert_after is in the plan; a webhook by its origin only', async () => {
    const base = { category: 'alerts', jobs: [job('one')] };
    assert.equal((await apply([file('alerts.json', base)])).code, 0);
    const changed = {
      category: 'alerts',
      notify: [{ on: ['failed'], webhook: 'https://hooks.example.com/services/T0/SECRET' }],
      jobs: [{ ...job('one'), alert_after: 'PT2H' }],
    };
    const r = await apply([file('alerts.json', changed)]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(
      r.stdout,
      `plan for category "alerts" at http://127.0.0.1:${port}:\n  ~ change  one (alert_after)\n  ~ notify  webhook https://hooks.example.com/…\napplied: 0 added, 1 changed, 0 removed\n`,
    );
    const cat = await t.db('categories').where({ name: 'alerts' }).first();
    assert.deepEqual(JSON.parse(cat.notify), changed.notify);
    const row = await t.db('jobs').where({ name: 'one', category_id: cat.id }).first();
    assert.equal(Number(row.alert_after_ms), 7_200_000);
    assert.ok(row.alert_base_at, 'the overdue clock starts when alert_after is set');
  });

  test('a bad policy field is refused locally with the job and the field; nothing is sent', async () => {
    const r = await apply([
      file('badpol.json', { category: 'pol', jobs: [{ ...job('one'), overlap: 'serial' }] }),
    ]);
    assert.equal(r.code, 1);
    assert.match(
      r.stdout,
      /^jobs\[0\]\.overlap: must be "allow", "forbid" or "replace" \(job "one"\)$/m,
    );
    assert.equal(
      JSON.parse((await t.db('jobs').where('name', 'one').first()).policies).overlap,
      'forbid',
    );
  });

  test('applying the same file again reports no changes', async () => {
    const f = file('ci.json', {
      category: 'ci',
      jobs: [job('alpha', 'echo changed'), job('beta'), job('delta')],
    });
    const r = await apply([f]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /  no changes\napplied: 0 added, 0 changed, 0 removed\n$/);
  });

  test('--category names a category for a file without a "category" field; --url and CRONQ_API_URL pick the server', async () => {
    const f = file('nameless.json', { jobs: [job('one')] });
    const r1 = await apply(
      [f, '--category', 'named-by-flag', '--url', `http://127.0.0.1:${port}`],
      { PORT: '1' },
    );
    assert.equal(r1.code, 0, r1.stderr);
    assert.deepEqual(
      (await jobsOf('named-by-flag')).map((j) => j.name),
      ['one'],
    );
    const r2 = await apply([f, '--category', 'named-by-env'], {
      PORT: '1',
      CRONQ_API_URL: `http://127.0.0.1:${port}/`,
    });
    assert.equal(r2.code, 0, r2.stderr);
    assert.deepEqual(
      (await jobsOf('named-by-env')).map((j) => j.name),
      ['one'],
    );
  });
});

describe('cronq apply refuses', () => {
  test("a wrong token: the server's message and exit 1", async () => {
    const r = await apply([file('t.json', { category: 'ci', jobs: [] })], {
      CRONQ_API_TOKEN: 'not-the-token',
    });
    assert.equal(r.code, 1);
    assert.equal(
      r.stderr,
      'cronq apply: the server refused the category (401): the API token is wrong\n',
    );
    assert.equal((await jobsOf('ci')).length, 3);
  });

  test('no token when the server needs one', async () => {
    const r = await apply([file('t.json', { category: 'ci', jobs: [] })], { CRONQ_API_TOKEN: '' });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^cronq apply: the server refused the category \(401\): sign in/);
  });

  test('names that differ only in case are two jobs, locally and on the server alike (names compare exactly)', async () => {
    const r = await apply([
      file('case.json', { category: 'ci-case', jobs: [job('Backup'), job('backup')] }),
    ]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.deepEqual((await jobsOf('ci-case')).map((j) => j.name).sort(), ['Backup', 'backup']);
  });

  test('an invalid file is caught locally: each problem, exit 1, nothing sent', async () => {
    const r = await apply([
      file('bad.json', {
        category: 'ci',
        jobs: [{ name: 'x', schedule: 'R/2024-01-01T00:00:00Z/PT1M' }],
      }),
    ]);
    assert.equal(r.code, 1);
    assert.equal(r.stdout, 'jobs[0].command: is required\n');
    assert.match(
      r.stderr,
      /bad\.json is not a valid category file \(1 problem\); nothing was sent/,
    );
  });

  test('a file that is not JSON: exit 1', async () => {
    const r = await apply([file('notjson.json', '{ "category": ')]);
    assert.equal(r.code, 1);
    assert.match(r.stdout, /^not valid JSON/);
  });

  test('a missing file: exit 2', async () => {
    const r = await apply([path.join(dir, 'missing.json')]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /^cronq apply: cannot read .*missing\.json: no such file\n$/);
  });

  test('no category name anywhere: exit 2', async () => {
    const r = await apply([file('nameless2.json', { jobs: [] })]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /has no "category" field: give the name with --category/);
  });

  test('no file argument: exit 2', async () => {
    const r = await apply([]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /missing required argument 'file'/);
  });

  test('a server that is not there: one line naming it, exit 1', async () => {
    const closed = await freePort();
    const r = await apply([
      file('ci2.json', { category: 'ci', jobs: [] }),
      '--url',
      `http://127.0.0.1:${closed}`,
    ]);
    assert.equal(r.code, 1);
    assert.equal(
      r.stderr,
      `cronq apply: cannot reach http://127.0.0.1:${closed}: ECONNREFUSED (is cronq-web running? set --url or CRONQ_API_URL)\n`,
    );
  });

  test('--help lists the flags and the token variable', async () => {
    const r = await runCommand('cronq', { args: ['apply', '--help'] });
    assert.equal(r.code, 0);
    for (const s of ['--url', '--dry-run', '--category', 'CRONQ_API_TOKEN', 'CRONQ_API_URL'])
      assert.ok(r.stdout.includes(s), s);
  });
});
