/**
 * Control latencies with the real daemons from dist/ (npm run build first):
 *
 * - kill: from POST /api/runs/<id>/kill to the run's process group being
 *   gone (no process of the group left in /proc but zombies waiting for
 *   PID 1 to reap them), over BENCH_CONTROL_KILLS (30) running `sleep 60`
 *   commands; `kill_answered` is the same request to its HTTP answer;
 * - run now: from POST /api/jobs/<id>/run to the command's start (it
 *   writes `date +%s%N`), over BENCH_CONTROL_RUNS (30) runs on an idle
 *   system, each after a pause so the injector is asleep in its poll
 *   (CRONQ_INJECTOR_MAX_POLL_MS at its default, 1000 ms).
 *
 *   npm run bench:control          (prints JSON)
 *
 * One injector, one results consumer, one runner (2 slots), one web, in a
 * database and vhost of their own, dropped after. Targets (issue 17): kill
 * p99 <= 2 s; run now p50 <= 100 ms, p99 <= 250 ms.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import mysql from 'mysql2/promise';
import { holdSharedLock } from './lib/lock';
import {
  benchName,
  createMysqlDatabase,
  createVhost,
  deleteVhost,
  dropMysqlDatabase,
} from './lib/services';
import { percentile, round } from './lib/stats';
import { groupAlive } from '../test/helpers/control';

const KILLS = Number(process.env.BENCH_CONTROL_KILLS ?? 30);
const RUNS = Number(process.env.BENCH_CONTROL_RUNS ?? 30);
const ROOT = path.resolve(__dirname, '..');

function log(msg: string): void {
  process.stderr.write(`[bench control ${new Date().toISOString()}] ${msg}\n`);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until<T>(
  what: string,
  f: () => Promise<T | undefined> | T | undefined,
  ms = 30_000,
  every = 2,
): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await f();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(every);
  }
}

interface Daemon {
  child: ChildProcess;
  out: string[];
}

function daemon(name: string, env: Record<string, string>, args: string[] = []): Daemon {
  const child = spawn(process.execPath, [path.join(ROOT, 'bin', name), ...args], {
    env: {
      PATH: process.env.PATH ?? '',
      HOME: process.env.HOME ?? '/tmp',
      CRONQ_LOG_LEVEL: 'info',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const d: Daemon = { child, out: [] };
  const keep = (b: Buffer) => {
    for (const l of b.toString('utf8').split('\n')) if (l) d.out.push(l);
    if (d.out.length > 2000) d.out.splice(0, 1000);
  };
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  return d;
}

function line(d: Daemon, re: RegExp): Promise<string> {
  return until(`a line ${re} from a daemon`, () => d.out.find((l) => re.test(l)), 60_000, 50);
}

async function stop(d: Daemon): Promise<void> {
  if (d.child.exitCode !== null) return;
  const exited = new Promise((r) => d.child.once('exit', r));
  d.child.kill('SIGTERM');
  await Promise.race([exited, sleep(15_000)]);
  if (d.child.exitCode === null) d.child.kill('SIGKILL');
}

/** True when no process of the group is left running (zombies do not count). */
const groupGone = (pgid: number): boolean => !groupAlive(pgid);

async function post(url: string): Promise<Response> {
  return fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: '{}',
  });
}

function summary(ms: number[]) {
  return {
    n: ms.length,
    p50_ms: round(percentile(ms, 50), 1),
    p99_ms: round(percentile(ms, 99), 1),
    max_ms: round(Math.max(...ms), 1),
    ...(process.env.BENCH_CONTROL_VALUES === '1' ? { values: ms.map((v) => round(v, 1)) } : {}),
  };
}

async function main(): Promise<void> {
  const dbName = benchName('cronq_bench_control');
  const vhost = benchName('cronq_bench_control');
  const dir = mkdtempSync(path.join(tmpdir(), 'cronq-bench-control-'));
  const release = await holdSharedLock();
  const daemons: Daemon[] = [];
  const dbUrl = await createMysqlDatabase(dbName);
  const amqpUrl = await createVhost(vhost);
  const env = { DATABASE_URL: dbUrl, RABBITMQ_URL: amqpUrl };
  const sql = await mysql.createConnection(dbUrl);
  try {
    const injector = daemon('cronq-injector', env);
    daemons.push(injector);
    await line(injector, /injector running/);
    daemons.push(daemon('cronq-results', env));
    const runner = daemon('cronq-runner', { ...env, LOG_PATH: dir, CRONQ_CONCURRENCY: '2' });
    daemons.push(runner);
    const web = daemon('cronq-web', env, ['--port', '0']);
    daemons.push(web);
    const port = Number(/"port":(\d+)/.exec(await line(web, /listening on http/))![1]);
    await Promise.all([line(runner, /AMQP connected/), line(web, /AMQP connected/)]);
    const base = `http://127.0.0.1:${port}`;
    await sql.query("INSERT INTO categories (name) VALUES ('bench')");
    const [[cat]] = (await sql.query(
      "SELECT id FROM categories WHERE name = 'bench'",
    )) as unknown as [[{ id: number }]];

    const addJob = async (name: string, command: string): Promise<number> => {
      const [r] = (await sql.query(
        "INSERT INTO jobs (name, category_id, command, routing_key, run_now) VALUES (?, ?, ?, 'default', 0)",
        [name, cat.id, command],
      )) as unknown as [{ insertId: number }];
      return r.insertId;
    };

    log(`run now: ${RUNS} runs, each after a pause`);
    const started: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      const file = path.join(dir, `start-${i}`);
      const id = await addJob(`runnow-${i}`, `date +%s%N > ${file}`);
      // Idle: the injector is asleep in its poll, the runner waiting.
      await sleep(700 + Math.random() * 300);
      const t0 = Date.now();
      const res = await post(`${base}/api/jobs/${id}/run`);
      if (res.status !== 200) throw new Error(`run now answered ${res.status}`);
      const ns = await until(`start-${i}`, () => {
        if (!existsSync(file)) return undefined;
        const text = readFileSync(file, 'utf8').trim();
        return text ? BigInt(text) : undefined;
      });
      started.push(Number(ns / 1_000_000n) + Number(ns % 1_000_000n) / 1e6 - t0);
    }

    log(`kill: ${KILLS} running sleeps`);
    const killed: number[] = [];
    const answered: number[] = [];
    for (let i = 0; i < KILLS; i++) {
      const file = path.join(dir, `pgid-${i}`);
      const id = await addJob(`kill-${i}`, `echo $$ > ${file}; sleep 60`);
      await post(`${base}/api/jobs/${id}/run`);
      const pgid = await until(`pgid-${i}`, () =>
        existsSync(file) ? Number(readFileSync(file, 'utf8').trim()) || undefined : undefined,
      );
      const runId = await until(
        `run of kill-${i} running`,
        async () => {
          const [rows] = (await sql.query(
            "SELECT run_id FROM runs WHERE job_id = ? AND status = 'running'",
            [id],
          )) as unknown as [Array<{ run_id: string }>];
          return rows[0]?.run_id;
        },
        30_000,
        20,
      );
      await sleep(200);
      const t0 = performance.now();
      const res = await post(`${base}/api/runs/${runId}/kill`);
      answered.push(performance.now() - t0);
      if (res.status !== 202) throw new Error(`kill answered ${res.status}: ${await res.text()}`);
      await until(`group of kill-${i} gone`, () => (groupGone(pgid) ? true : undefined), 30_000, 1);
      killed.push(performance.now() - t0);
    }
    const out = {
      run_now: { ...summary(started), target: 'p50 <= 100 ms, p99 <= 250 ms' },
      kill: { ...summary(killed), target: 'p99 <= 2000 ms' },
      kill_answered: summary(answered),
    };
    process.stdout.write(`${JSON.stringify(out, null, 2)}\n`);
    if (process.env.BENCH_CONTROL_VALUES === '1')
      for (const l of runner.out) if (/kill|finished/.test(l)) log(l.slice(0, 300));
  } finally {
    await Promise.all(daemons.map(stop));
    await sql.end().catch(() => undefined);
    await dropMysqlDatabase(dbName).catch(() => undefined);
    await deleteVhost(vhost);
    rmSync(dir, { recursive: true, force: true });
    release();
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
