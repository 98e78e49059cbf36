/**
 * The operator's commands (`cronq jobs|runs|run|kill|logs|pause|resume`) as
 * real processes against a real cronq-web with a token, and the real
 * injector, runner and results consumer behind it.
 */
import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { runCommand, startCommand, type Proc } from '../helpers/processes';
import { useServices, waitFor } from '../helpers/services';

const TOKEN = 'ops-cli-token-123';
const svc = useServices();
let port: number;
const COMMANDS = ['jobs', 'runs', 'run', 'kill', 'logs', 'pause', 'resume'];
const LONG_NAME = 'a job with a name far too long for any eighty column terminal table at all';

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

const cronq = (args: string[], env: Record<string, string> = {}, timeoutMs = 60_000) =>
  runCommand('cronq', {
    args,
    env: { CRONQ_API_TOKEN: TOKEN, PORT: String(port), ...env },
    timeoutMs,
  });

async function put(category: string, jobs: unknown[]): Promise<void> {
  const res = await fetch(`http://127.0.0.1:${port}/api/category/${encodeURIComponent(category)}`, {
    method: 'PUT',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${TOKEN}` },
    body: JSON.stringify({ category, jobs }),
  });
  assert.equal(res.status, 200, await res.text());
}

const yearly = 'R/2030-01-01T00:00:00Z/P1Y';
const idOf = async (category: string, name: string): Promise<number> =>
  (
    (await svc.db
      .db('jobs')
      .join('categories', 'categories.id', 'jobs.category_id')
      .where({ 'categories.name': category, 'jobs.name': name })
      .first('jobs.id')) as { id: number }
  ).id;

let resultsProc: Proc;

describe('the operator commands on a running web admin', () => {
  before(async () => {
    port = await freePort();
    const logs = mkdtempSync(path.join(tmpdir(), 'cronq-ops-'));
    const env = {
      DATABASE_URL: svc.db.url,
      RABBITMQ_URL: svc.vhost.url,
      LOG_PATH: logs,
      CRONQ_LOG_LEVEL: 'info',
      CRONQ_RESULT_BUFFER_PATH: path.join(logs, 'buffer'),
    };
    const web = svc.track(
      startCommand('cronq-web', { env: { ...env, PORT: String(port), CRONQ_API_TOKEN: TOKEN } }),
    );
    const results = (resultsProc = svc.track(startCommand('cronq-results', { env })));
    const runner = svc.track(startCommand('cronq-runner', { env }));
    const injector = svc.track(
      startCommand('cronq-injector', { env: { ...env, CRONQ_INJECTOR_MAX_POLL_MS: '200' } }),
    );
    await Promise.all([
      results.waitForLine('consuming results', 30_000),
      runner.waitForLine('AMQP connected', 30_000),
      injector.waitForLine('injector running', 30_000),
      waitFor(async () => (await fetch(`http://127.0.0.1:${port}/_status`)).ok, {
        timeoutMs: 30_000,
        message: `cronq-web on ${port}; output:\n${web.output()}`,
      }),
    ]);
    await put('ops', [
      // It waits before writing, so that `cronq logs --follow` is connected when it does.
      {
        name: 'hello',
        schedule: yearly,
        command: 'sleep 3; echo "hello from ops"; echo second line',
      },
      { name: 'exit3', schedule: yearly, command: 'echo failing; exit 3' },
      { name: LONG_NAME, schedule: '*/5 * * * *', command: 'true' },
    ]);
    // Names may hold slashes: "x/y/z" is both x + "y/z" and x/y + "z".
    await put('x', [{ name: 'y/z', schedule: yearly, command: 'true' }]);
    await put('x/y', [{ name: 'z', schedule: yearly, command: 'true' }]);
  });

  test('each command has --help, and cronq --help lists it', async () => {
    const top = await cronq(['--help']);
    for (const c of COMMANDS) {
      assert.match(top.stdout, new RegExp(`^  ${c}\\s+\\S`, 'm'), c);
      const r = await cronq([c, '--help']);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, new RegExp(`^Usage: cronq ${c} `));
      assert.match(r.stdout, /CRONQ_API_TOKEN/);
    }
  });

  test('cronq jobs: a table of id, name, category, schedule, next run, last status in 80 columns; --json parses', async () => {
    const r = await cronq(['jobs']);
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.trimEnd().split('\n');
    assert.match(lines[0]!, /^\s*ID\s+NAME\s+CATEGORY\s+SCHEDULE\s+NEXT RUN \(UTC\)\s+STATUS$/);
    for (const l of lines) assert.ok([...l].length <= 80, `${[...l].length} columns: ${l}`);
    const hello = lines.find((l) => /\bhello\b/.test(l));
    assert.match(hello!, /^\s*\d+  hello\s+ops\s+R\/2030-01-01T\S*\s+2030-01-01 00:00\s+-$/);
    // The long name is cut with an ellipsis, not wrapped.
    assert.ok(lines.some((l) => l.includes('a job with a name') && l.includes('…')));
    assert.ok(!r.stdout.includes(LONG_NAME));

    const j = await cronq(['jobs', '--json']);
    assert.equal(j.code, 0, j.stderr);
    const jobs = JSON.parse(j.stdout) as Array<{ id: number; name: string }>;
    assert.deepEqual(
      jobs.map((x) => x.name).sort(),
      [LONG_NAME, 'exit3', 'hello', 'y/z', 'z'].sort(),
    );

    const only = JSON.parse(
      (await cronq(['jobs', '--json', '--category', 'x/y'])).stdout,
    ) as Array<{
      name: string;
    }>;
    assert.deepEqual(
      only.map((x) => x.name),
      ['z'],
    );
    // Without a long name beside it, the schedule is shown whole.
    const small = await cronq(['jobs', '--category', 'x/y']);
    assert.match(
      small.stdout.split('\n')[1]!,
      /^\s*\d+  z\s+x\/y\s+R\/2030-01-01T00:00:00Z\/P1Y  2030-01-01 00:00  -$/,
    );
  });

  test('cronq run --wait prints the run id and exits with the exit code of a job that exits 3', async () => {
    const r = await cronq(['run', 'ops/exit3', '--wait']);
    assert.equal(r.code, 3, r.stderr);
    const runId = r.stdout.trim();
    assert.match(runId, /^[0-9a-f]{32}$/);
    assert.match(r.stderr, new RegExp(`run ${runId} failed \\(exit 3\\)`));
    const row = await svc.db.db('runs').where({ run_id: runId }).first();
    assert.equal(row.job_id, await idOf('ops', 'exit3'));
    assert.equal(row.triggered_by, 'manual');
    assert.equal(row.return_code, 3);

    // runs: by job (name or id), by status; table and JSON.
    const listed = await cronq(['runs', '--job', 'ops/exit3', '--json']);
    assert.equal(listed.code, 0, listed.stderr);
    const runs = JSON.parse(listed.stdout) as Array<{
      id: string;
      status: string;
      return_code: number;
    }>;
    assert.deepEqual(
      runs.map((x) => [x.id, x.status, x.return_code]),
      [[runId, 'failed', 3]],
    );
    const table = await cronq(['runs', '--job', String(row.job_id), '--status', 'failed']);
    assert.equal(table.code, 0, table.stderr);
    const lines = table.stdout.trimEnd().split('\n');
    assert.match(lines[0]!, /^RUN ID\s+JOB\s+STATUS\s+STARTED \(UTC\)\s+EXIT$/);
    assert.match(
      lines[1]!,
      new RegExp(`^${runId}  exit3\\s+failed\\s+\\d\\d-\\d\\d \\d\\d:\\d\\d:\\d\\d\\s+3$`),
    );
    for (const l of lines) assert.ok([...l].length <= 80, l);
    const none = await cronq(['runs', '--job', 'ops/exit3', '--status', 'succeeded', '--json']);
    assert.deepEqual(JSON.parse(none.stdout), []);
  });

  test('cronq run without --wait prints the id at once; cronq logs --follow prints its output live and ends with the run', async () => {
    const r = await cronq(['run', 'ops/hello']);
    assert.equal(r.code, 0, r.stderr);
    const runId = r.stdout.trim();
    assert.match(runId, /^[0-9a-f]{32}$/);
    const logs = await cronq(['logs', runId, '--follow']);
    assert.equal(logs.code, 0, logs.stderr);
    assert.equal(logs.stdout, 'hello from ops\nsecond line\n');
    const again = await cronq(['logs', runId.toUpperCase()]);
    assert.equal(again.stdout, 'hello from ops\nsecond line\n');
  });

  test('cronq pause and resume a job by category/name; cronq jobs shows it paused', async () => {
    const id = await idOf('ops', 'hello');
    const p = await cronq(['pause', 'ops/hello']);
    assert.equal(p.code, 0, p.stderr);
    assert.equal(p.stdout, `job ${id} (ops/hello) paused\n`);
    assert.notEqual((await svc.db.db('jobs').where({ id }).first()).paused_at, null);
    const listed = (await cronq(['jobs'])).stdout.split('\n').find((l) => /\bhello\b/.test(l));
    assert.match(listed!, /\bpaused\b/);
    const r = await cronq(['resume', String(id)]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, `job ${id} (ops/hello) resumed\n`);
    assert.equal((await svc.db.db('jobs').where({ id }).first()).paused_at, null);
  });

  test('an unknown or ambiguous job, a bad run id or a bad status exits 2 with one line', async () => {
    for (const [args, message] of [
      [['run', 'ops/nope'], /no job "ops\/nope"/],
      [['pause', '999999'], /no job with id 999999/],
      [['runs', '--job', 'nope/nope'], /no job "nope\/nope"/],
      [['run', 'plainname'], /neither a job id nor category\/name/],
      [['run', 'x/y/z'], /names 2 jobs \(ids \d+, \d+\): give the id/],
      [['logs', 'not-a-run'], /RUN must be a run id of 32 hexadecimal digits/],
      [['kill', '123'], /RUN must be a run id/],
      [['runs', '--status', 'bogus'], /status: "bogus" is not one of/],
      [['runs', '--limit', '0'], /--limit must be a whole number from 1 to 100/],
    ] as const) {
      const r = await cronq([...args]);
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, message);
      assert.equal(r.stderr.trimEnd().split('\n').length, 1, r.stderr);
      assert.equal(r.stdout, '');
    }
    assert.equal((await cronq(['runs', '--job', 'x/y/z'])).code, 2);
    // Either split alone is fine by its id.
    assert.equal((await cronq(['runs', '--job', String(await idOf('x/y', 'z'))])).code, 0);
  });

  test('cronq kill ends a running run (recorded killed); a second kill exits 1 saying it already ended', async () => {
    await put('killing', [{ name: 'long', schedule: yearly, command: 'sleep 60' }]);
    const started = await cronq(['run', 'killing/long']);
    assert.equal(started.code, 0, started.stderr);
    const runId = started.stdout.trim();
    await waitFor(
      async () =>
        ((await svc.db.db('runs').where({ run_id: runId }).first('status')) as { status: string })
          ?.status === 'running',
      { timeoutMs: 30_000, message: 'the run started' },
    );
    const killed = await cronq(['kill', runId]);
    assert.equal(killed.code, 0, killed.stderr);
    const row = await waitFor(
      async () => {
        const r = (await svc.db.db('runs').where({ run_id: runId }).first()) as
          { status: string; killed_by: string | null; reason: string | null } | undefined;
        return r?.status === 'killed' ? r : undefined;
      },
      { timeoutMs: 30_000, message: 'the run recorded killed' },
    );
    assert.match(row.killed_by ?? '', /^api from /);
    const again = await cronq(['kill', runId]);
    assert.equal(again.code, 1, again.stderr);
    assert.equal(again.stderr.trimEnd().split('\n').length, 1, again.stderr);
    assert.match(again.stderr, /409|killed/);
  });

  test('cronq kill and logs of an unknown run: exit 1 with one line, nothing changed', async () => {
    const unknown = 'f'.repeat(32);
    for (const c of ['kill', 'logs']) {
      const r = await cronq([c, unknown]);
      assert.equal(r.code, 1, r.stderr);
      assert.equal(r.stderr.trimEnd().split('\n').length, 1, r.stderr);
      assert.match(r.stderr, /404|no run/);
    }
  });

  test('the token is required when the web has one: none or a wrong one exits 1 naming CRONQ_API_TOKEN', async () => {
    for (const env of [{ CRONQ_API_TOKEN: '' }, { CRONQ_API_TOKEN: 'wrong-token-456' }]) {
      for (const args of [['jobs'], ['runs'], ['pause', 'ops/hello'], ['run', '1']]) {
        const r = await cronq(args, env);
        assert.equal(r.code, 1, `${args.join(' ')}: ${r.stderr}`);
        assert.match(r.stderr, /CRONQ_API_TOKEN/);
        assert.equal(r.stderr.trimEnd().split('\n').length, 1, r.stderr);
      }
    }
    assert.equal((await svc.db.db('jobs').whereNotNull('paused_at').count('* as n'))[0].n, 0);
  });

  test('an unreachable web admin: exit 1 with one line that says so', async () => {
    const r = await cronq(['jobs', '--url', `http://127.0.0.1:${await freePort()}`]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^cronq jobs: cannot reach http:\/\/127\.0\.0\.1:\d+: ECONNREFUSED/);
  });

  // Last: it stops cronq-results.
  test('cronq logs --follow with cronq-results down ends with the run, saying its result is not stored yet', async () => {
    const stopped = await resultsProc.stop();
    assert.equal(stopped.code, 0);
    const r = await cronq(['run', 'ops/hello']);
    assert.equal(r.code, 0, r.stderr);
    const runId = r.stdout.trim();
    const logs = await cronq(['logs', runId, '--follow']);
    assert.equal(logs.code, 0, logs.stderr);
    assert.equal(logs.stdout, 'hello from ops\nsecond line\n');
    assert.match(
      logs.stderr,
      new RegExp(
        `^run ${runId} succeeded\\nits result is not stored yet after 10 s \\(is cronq-results running\\?\\)\\n$`,
      ),
    );
  });
});
