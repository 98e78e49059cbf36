/**
 * `cronq dev` (what `npm start` runs) as a real process: it brings up the
 * four daemons against its own database and vhost, a job runs through them
 * end to end, and a Ctrl-C (SIGINT) leaves no process behind.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import {
  createTestDatabase,
  createTestVhost,
  waitFor,
  type TestDatabase,
  type TestVhost,
} from '../helpers/services';
import { runCommand, startCommand, type Proc } from '../helpers/processes';

let t: TestDatabase;
let vhost: TestVhost;
let logDir: string;

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

/** pid, parent pid and process group of every process on the machine. */
function processTable(): Array<{ pid: number; ppid: number; pgid: number; args: string }> {
  return execFileSync('ps', ['-eo', 'pid=,ppid=,pgid=,args='], { encoding: 'utf8' })
    .split('\n')
    .map((l) => /^\s*(\d+)\s+(\d+)\s+(\d+)\s+(.*)$/.exec(l))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => ({ pid: Number(m[1]), ppid: Number(m[2]), pgid: Number(m[3]), args: m[4]! }));
}

/** Every descendant of `root`, with its process group. */
function descendants(root: number): Array<{ pid: number; pgid: number; args: string }> {
  const table = processTable();
  const out: Array<{ pid: number; pgid: number; args: string }> = [];
  const queue = [root];
  while (queue.length > 0) {
    const p = queue.shift()!;
    for (const row of table)
      if (row.ppid === p) {
        out.push(row);
        queue.push(row.pid);
      }
  }
  return out;
}

function alive(pids: number[], groups: number[]): string[] {
  return processTable()
    .filter((r) => pids.includes(r.pid) || groups.includes(r.pgid))
    .map((r) => `${r.pid} (group ${r.pgid}): ${r.args}`);
}

async function startDev(port: number): Promise<Proc> {
  const dev = startCommand('cronq', {
    args: ['dev', '--grace', '15'],
    env: {
      DATABASE_URL: t.url,
      RABBITMQ_URL: vhost.url,
      PORT: String(port),
      LOG_PATH: logDir,
      CRONQ_LOG_LEVEL: 'info',
    },
  });
  await dev.waitForLine(`[dev] CronQ is running. Admin: http://127.0.0.1:${port}/`, 45_000);
  return dev;
}

async function daemonsOf(dev: Proc): Promise<Array<{ pid: number; pgid: number; args: string }>> {
  return waitFor(
    () => {
      const kids = descendants(dev.child.pid!).filter((p) =>
        /bin\/cronq-(injector|results|runner|web)/.test(p.args),
      );
      return kids.length === 4 ? kids : null;
    },
    { message: 'four daemons under cronq dev' },
  );
}

before(async () => {
  [t, vhost] = await Promise.all([createTestDatabase(), createTestVhost()]);
  logDir = mkdtempSync(path.join(tmpdir(), 'cronq-dev-logs-'));
});
after(async () => {
  await t?.drop();
  await vhost?.drop();
  rmSync(logDir, { recursive: true, force: true });
});

describe('cronq dev', () => {
  test('brings up the four daemons, runs a job end to end, and leaves no process behind after Ctrl-C', async () => {
    const port = await freePort();
    const dev = await startDev(port);
    try {
      const kids = await daemonsOf(dev);
      // A daemon may not have logged yet when the admin URL is printed: wait for each role's line.
      for (const role of ['injector', 'results', 'runner', 'web'])
        await waitFor(() => dev.lines().some((l) => l.startsWith(`[${role}]`)), {
          message: `a [${role}] line`,
        });
      const status = await fetch(`http://127.0.0.1:${port}/_status`);
      assert.equal(status.status, 200);

      const [categoryId] = (await t.db('categories').insert({ name: 'dev' })) as [number];
      const farAway = new Date(Date.now() + 86_400_000);
      const [jobId] = (await t.db('jobs').insert({
        name: 'hello from dev',
        category_id: categoryId,
        command: 'echo hello-from-cronq-dev',
        schedule: 'R/2024-01-01T00:00:00Z/P1D',
        interval: new Date(86_400_000),
        next_run: farAway,
        run_now: 1,
        routing_key: 'default',
      })) as [number];
      const run = await waitFor(
        async () =>
          (await t.db('runs').where({ job_id: jobId, status: 'succeeded' }).first()) as
            { run_id: string; return_code: number } | undefined,
        { timeoutMs: 30_000, message: 'a succeeded run of the job' },
      );
      assert.equal(run.return_code, 0);

      const groups = kids.map((k) => k.pgid);
      assert.ok(
        groups.every((g) => g !== dev.child.pid),
        'each daemon runs in its own process group',
      );
      dev.kill('SIGINT');
      const exit = await dev.exited;
      assert.equal(exit.code, 0, dev.output().slice(-3000));
      assert.ok(dev.lines().some((l) => l.includes('[dev] SIGINT: stopping every daemon')));
      assert.ok(dev.lines().some((l) => l === '[dev] stopped'));
      assert.deepEqual(alive([dev.child.pid!, ...kids.map((k) => k.pid)], groups), []);
    } finally {
      dev.kill('SIGKILL');
    }
  });

  test('when one daemon dies, it says which and stops the others, exiting 1 with no process left', async () => {
    const port = await freePort();
    const dev = await startDev(port);
    try {
      const kids = await daemonsOf(dev);
      const injector = kids.find((k) => k.args.includes('cronq-injector'))!;
      process.kill(injector.pid, 'SIGKILL');
      const exit = await dev.exited;
      assert.equal(exit.code, 1);
      assert.ok(
        dev
          .lines()
          .some((l) =>
            l.includes('[dev] injector exited unexpectedly (signal SIGKILL); stopping the others'),
          ),
        dev.output().slice(-2000),
      );
      assert.deepEqual(
        alive(
          kids.map((k) => k.pid),
          kids.map((k) => k.pgid),
        ),
        [],
      );
    } finally {
      dev.kill('SIGKILL');
    }
  });

  test('when cronq dev itself is killed outright (SIGKILL), its daemons notice and stop by themselves', async () => {
    const port = await freePort();
    const dev = await startDev(port);
    try {
      const kids = await daemonsOf(dev);
      dev.kill('SIGKILL');
      await dev.exited;
      await waitFor(
        () =>
          alive(
            kids.map((k) => k.pid),
            kids.map((k) => k.pgid),
          ).length === 0,
        {
          timeoutMs: 30_000,
          message: 'the orphaned daemons stop',
        },
      );
    } finally {
      dev.kill('SIGKILL');
    }
  });

  test('a bad setting stops it before anything starts: exit 2, one line, no stack trace', async () => {
    const r = await runCommand('cronq', {
      args: ['dev'],
      env: { DATABASE_URL: t.url, RABBITMQ_URL: vhost.url, PORT: 'eighty' },
    });
    assert.equal(r.code, 2);
    assert.equal(
      r.stderr,
      'cronq dev: PORT="eighty" is not valid: expected a whole number from 0 to 65535\n',
    );
  });

  test('an unreachable database is one line with a hint, exit 1', async () => {
    const r = await runCommand('cronq', {
      args: ['dev'],
      env: { DATABASE_URL: 'mysql://root@127.0.0.1:1/cronq_nowhere', RABBITMQ_URL: vhost.url },
      timeoutMs: 30_000,
    });
    assert.equal(r.code, 1);
    assert.match(
      r.stderr,
      /^cronq dev: cannot prepare the database "cronq_nowhere" at 127\.0\.0\.1:1: .*is MariaDB\/MySQL running\? set DATABASE_URL\)\n$/,
    );
  });

  test('an unreachable broker is one line with a hint, exit 1', async () => {
    const r = await runCommand('cronq', {
      args: ['dev'],
      env: { DATABASE_URL: t.url, RABBITMQ_URL: 'amqp://guest:guest@127.0.0.1:1/' },
      timeoutMs: 30_000,
    });
    assert.equal(r.code, 1);
    assert.match(
      r.stderr,
      /^cronq dev: cannot reach RabbitMQ .*is RabbitMQ running\? set RABBITMQ_URL\)\n$/,
    );
  });

  test('--help lists its flags and the environment', async () => {
    const r = await runCommand('cronq', { args: ['dev', '--help'] });
    assert.equal(r.code, 0);
    for (const s of ['--grace', '--no-color', 'DATABASE_URL', 'RABBITMQ_URL', 'LOG_PATH', 'Ctrl-C'])
      assert.ok(r.stdout.includes(s), s);
  });
});
