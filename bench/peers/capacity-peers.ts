/**
 * The peers' side of the capacity benchmark: how many jobs per second
 * BullMQ (Redis with AOF appendfsync everysec, and without persistence) and
 * pg-boss move from producer to completed with no-op workers. A backlog is
 * added while the workers run; the rate is jobs / (time from the first add
 * to the last completion), so producing, storing and completing are all
 * inside it, as the injector, broker and results consumer are for CronQ.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Queue } from 'bullmq';
import PgBoss from 'pg-boss';

function perRun(cpu: Record<string, number>, runs: number): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(cpu))
    out[k] =
      k === 'machineBusy'
        ? Math.round(v * 100) / 100
        : Math.round((v / Math.max(1, runs)) * 1000) / 1000;
  return out;
}

export interface PeerFigures {
  system: string;
  jobs: number;
  seconds: number;
  runsPerSecond: number;
  completed: number;
  /** CPU ms per job of the workers, the store (redis-server/postgres) and the producer (this process). */
  cpuMsPerRun: Record<string, number>;
}

function startWorkers(n: number, env: Record<string, string>): Promise<ChildProcess[]> {
  return Promise.all(
    Array.from({ length: n }, () => {
      const child = spawn(
        process.execPath,
        ['--import', 'tsx', path.join(__dirname, 'noop-worker.ts')],
        { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'inherit'] },
      );
      return new Promise<ChildProcess>((resolve, reject) => {
        child.stdout!.on('data', (d: Buffer) => d.toString().includes('ready') && resolve(child));
        child.once('exit', (code) => reject(new Error(`noop worker exited with ${code}`)));
      });
    }),
  );
}

async function stopWorkers(children: ChildProcess[]): Promise<void> {
  await Promise.all(
    children.map(
      (c) =>
        new Promise<void>((resolve) => {
          if (c.exitCode !== null) return resolve();
          c.once('exit', () => resolve());
          c.kill('SIGTERM');
          setTimeout(() => c.kill('SIGKILL'), 5000).unref();
        }),
    ),
  );
}

async function waitCount(
  count: () => Promise<number>,
  target: number,
  deadline: number,
): Promise<number> {
  let last = 0;
  while (Date.now() < deadline) {
    last = await count().catch(() => last);
    if (last >= target) return last;
    await new Promise((r) => setTimeout(r, 100));
  }
  return last;
}

/** A redis-server of this run's own on `port`: AOF with fsync every second, or no persistence. */
export async function startRedis(port: number, aof: boolean): Promise<() => Promise<void>> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'cronq-bench-redis-'));
  const args = ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', ''];
  args.push(
    ...(aof ? ['--appendonly', 'yes', '--appendfsync', 'everysec'] : ['--appendonly', 'no']),
  );
  const child = spawn('redis-server', args, { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise<void>((resolve, reject) => {
    child.stdout!.on('data', (d: Buffer) => d.toString().includes('Ready to accept') && resolve());
    child.once('exit', (code) => reject(new Error(`redis-server exited with ${code}`)));
  });
  return async () => {
    child.kill('SIGTERM');
    await new Promise((r) => child.once('exit', r));
    rmSync(dir, { recursive: true, force: true });
  };
}

export async function bullmqCapacity(
  name: string,
  redisPort: number,
  jobs: number,
  cpu: { start(pids: Record<string, number[]>): void; stop(): Record<string, number> },
  redisPid: () => number[],
): Promise<PeerFigures> {
  const prefix = `capbench${Date.now().toString(36)}`;
  const connection = { host: '127.0.0.1', port: redisPort, maxRetriesPerRequest: null };
  const queue = new Queue('cap', { connection, prefix });
  await queue.waitUntilReady();
  const workers = await startWorkers(2, {
    BENCH_PEER: 'bullmq',
    BENCH_REDIS_URL: `redis://127.0.0.1:${redisPort}`,
    BENCH_QUEUE: 'cap',
    BENCH_PREFIX: prefix,
    BENCH_CONCURRENCY: '64',
  });
  try {
    const t0 = Date.now();
    cpu.start({ workers: workers.map((w) => w.pid!), store: redisPid(), producer: [process.pid] });
    for (let i = 0; i < jobs; i += 1000)
      await queue.addBulk(
        Array.from({ length: Math.min(1000, jobs - i) }, (_, k) => ({
          name: 'j',
          data: { i: i + k },
        })),
      );
    const done = await waitCount(
      async () => (await queue.getJobCounts('completed')).completed ?? 0,
      jobs,
      t0 + 300_000,
    );
    const seconds = (Date.now() - t0) / 1000;
    const cpuMs = cpu.stop();
    return {
      system: name,
      jobs,
      seconds,
      runsPerSecond: done / seconds,
      completed: done,
      cpuMsPerRun: perRun(cpuMs, done),
    };
  } finally {
    await stopWorkers(workers);
    await queue.obliterate({ force: true }).catch(() => undefined);
    await queue.close();
  }
}

export async function pgbossCapacity(
  pgUrl: string,
  jobs: number,
  cpu: { start(pids: Record<string, number[]>): void; stop(): Record<string, number> },
  pgPids: () => number[],
): Promise<PeerFigures> {
  const boss = new PgBoss({ connectionString: pgUrl, supervise: false, schedule: false, max: 5 });
  boss.on('error', () => undefined);
  await boss.start();
  await boss.createQueue('cap');
  const workers = await startWorkers(2, {
    BENCH_PEER: 'pgboss',
    BENCH_PG_URL: pgUrl,
    BENCH_QUEUE: 'cap',
    BENCH_CONCURRENCY: '4',
  });
  try {
    const t0 = Date.now();
    cpu.start({ workers: workers.map((w) => w.pid!), store: pgPids(), producer: [process.pid] });
    for (let i = 0; i < jobs; i += 1000)
      await boss.insert(
        Array.from({ length: Math.min(1000, jobs - i) }, (_, k) => ({
          name: 'cap',
          data: { i: i + k },
        })),
      );
    const done = await waitCount(
      async () =>
        Number(
          (
            (
              await boss
                .getDb()
                .executeSql(
                  "SELECT count(*) AS n FROM pgboss.job WHERE name = 'cap' AND state = 'completed'",
                  [],
                )
            ).rows[0] as { n: string }
          ).n,
        ),
      jobs,
      t0 + 300_000,
    );
    const seconds = (Date.now() - t0) / 1000;
    const cpuMs = cpu.stop();
    return {
      system: 'pg-boss',
      jobs,
      seconds,
      runsPerSecond: done / seconds,
      completed: done,
      cpuMsPerRun: perRun(cpuMs, done),
    };
  } finally {
    await stopWorkers(workers);
    await boss.stop({ graceful: false, wait: true, timeout: 2000 }).catch(() => undefined);
  }
}
