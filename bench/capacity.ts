/**
 * The central tier's capacity (`npm run bench:capacity`, or
 * `npm run bench -- --only capacity`): how many runs per second the real
 * cronq-injector + RabbitMQ + cronq-results + MariaDB sustain, with
 * simulated runners (bench/capacity/sim-runner.ts: they report `starting`
 * and `finished` like a runner, without spawning) spread over several
 * processes. Offered load rises in steps (jobs scheduled every second: N
 * jobs = N runs/s); at each step it measures the runs finished per second,
 * their lag, and the CPU ms per run of each part. Done with classic and
 * with quorum queues, then the peers with no-op workers: BullMQ on Redis
 * with AOF appendfsync everysec and without persistence, and pg-boss.
 * Prints one JSON document; progress lines on stderr.
 *
 *   --levels 500,750,1000,1250,1500,1750,2000,2500   offered runs/s per step (a pass stops below 80 %)
 *   --seconds 10                  measured seconds per step (after 4 s of warm-up)
 *   --types classic,quorum,quorum,classic   queue types, one pass each (best pass per type counts)
 *   --peers 20000                 jobs per peer measurement (0 = skip the peers)
 */
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { createDb, migrate, type Knex } from '../src/core/db';
import { parseDatabaseUrl } from '../src/core/config';
import type { QueueType } from '../src/core/queue-type';
import {
  benchName,
  createMysqlDatabase,
  createVhost,
  deleteVhost,
  dropMysqlDatabase,
  PG,
  createPgDatabase,
  dropPgDatabase,
} from './lib/services';
import { CpuMeter, pidsOf, sharedBrokerPids } from './capacity/cpu-meter';
import { capacityTable } from './capacity/report';

const ROOT = path.resolve(__dirname, '..');
const SIM_PROCESSES = 3;

function arg(name: string, def: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? (process.argv[i + 1] ?? def) : def;
}

function log(msg: string): void {
  process.stderr.write(`[bench ${new Date().toISOString()}] ${msg}\n`);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, Math.max(0, ms)));

function startProcess(
  args: string[],
  env: Record<string, string>,
  readyLine: string,
): Promise<ChildProcess> {
  const child = spawn(process.execPath, args, {
    cwd: ROOT,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return new Promise((resolve, reject) => {
    let seen = '';
    const onData = (d: Buffer) => {
      seen = (seen + d.toString()).slice(-20_000);
      if (seen.includes(readyLine)) resolve(child);
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.once('exit', (code) =>
      reject(new Error(`${args.join(' ')} exited with ${code}: ${seen.slice(-2000)}`)),
    );
  });
}

async function stopProcess(c: ChildProcess): Promise<void> {
  if (c.exitCode !== null || c.signalCode !== null) return;
  await new Promise<void>((resolve) => {
    c.once('exit', () => resolve());
    c.kill('SIGTERM');
    setTimeout(() => c.kill('SIGKILL'), 10_000).unref();
  });
}

export interface LevelFigures {
  offered: number;
  runsPerSecond: number;
  /** Finished minus scheduled, ms, of the runs finished in the window. */
  lagMsP50: number;
  lagMsP99: number;
  /** Below 95 % of the offered load, or lag growing past 2 s: this step is past the capacity. */
  saturated: boolean;
  /** CPU ms per finished run of each part; machineBusy = share of both cores busy. */
  cpuMsPerRun: Record<string, number>;
  /** Share of one core each single-threaded daemon used (1 = saturated). */
  coreShare: Record<string, number>;
}

async function cronqCapacity(
  type: QueueType,
  levels: number[],
  seconds: number,
): Promise<{ queueType: QueueType; levels: LevelFigures[]; sustained: number; peak: number }> {
  const dbName = benchName('cronq_bench_cap');
  const vhost = benchName('cronq_bench_cap');
  const dbUrl = await createMysqlDatabase(dbName);
  const amqpUrl = await createVhost(vhost);
  const db: Knex = createDb(parseDatabaseUrl(dbUrl), { poolMax: 4 });
  const procs: ChildProcess[] = [];
  const out: LevelFigures[] = [];
  try {
    await migrate(db);
    const env = {
      DATABASE_URL: dbUrl,
      RABBITMQ_URL: amqpUrl,
      CRONQ_QUEUE_TYPE: type,
      CRONQ_LOG_LEVEL: 'warn',
      CRONQ_INJECTOR_BATCH_SIZE: '1000',
    };
    // The simulated runners declare the queues (as runners do) before the injector publishes.
    const sims = await Promise.all(
      Array.from({ length: SIM_PROCESSES }, () =>
        startProcess(
          ['--import', 'tsx', 'bench/capacity/sim-runner.ts'],
          { BENCH_AMQP_URL: amqpUrl, BENCH_QUEUE_TYPE: type },
          'ready',
        ),
      ),
    );
    procs.push(...sims);
    const results = await startProcess(
      ['bin/cronq-results'],
      { ...env, CRONQ_LOG_LEVEL: 'info' },
      'consuming results',
    );
    procs.push(results);
    const injector = await startProcess(
      ['bin/cronq-injector'],
      { ...env, CRONQ_LOG_LEVEL: 'info' },
      'injector running',
    );
    procs.push(injector);
    await db.raw('INSERT INTO categories (name) VALUES (?)', ['capacity']);
    const [{ id: categoryId }] = (await db('categories')
      .where({ name: 'capacity' })
      .select('id')) as Array<{ id: number }>;
    let jobs = 0;
    for (const offered of levels) {
      const start = new Date(Math.ceil((Date.now() + 2000) / 1000) * 1000);
      const rows = Array.from({ length: offered - jobs }, (_, i) => ({
        name: `cap-${jobs + i}`,
        category_id: categoryId,
        command: 'true',
        routing_key: 'default',
        schedule: `R/${start.toISOString()}/PT1S`,
        next_run: start,
      }));
      for (let i = 0; i < rows.length; i += 1000) await db('jobs').insert(rows.slice(i, i + 1000));
      jobs = offered;
      await sleep(start.getTime() - Date.now() + 4000);
      const meter = new CpuMeter();
      const from = new Date();
      meter.start({
        injector: [injector.pid!],
        results: [results.pid!],
        simRunners: sims.map((s) => s.pid!),
        rabbitmq: sharedBrokerPids,
        mariadb: () => pidsOf('mariadbd'),
      });
      await sleep(seconds * 1000);
      const cpu = meter.stop();
      const to = new Date();
      const [row] = (
        await db.raw(`SELECT COUNT(*) AS n FROM runs WHERE finished_at >= ? AND finished_at < ?`, [
          from,
          to,
        ])
      )[0] as Array<{ n: number }>;
      const lags = (
        (await db.raw(
          `SELECT TIMESTAMPDIFF(MICROSECOND, scheduled_for, finished_at) / 1000 AS lag FROM runs WHERE finished_at >= ? AND finished_at < ? ORDER BY lag`,
          [from, to],
        )) as [Array<{ lag: number }>]
      )[0].map((r) => Number(r.lag));
      const n = Number(row!.n);
      const rate = n / ((to.getTime() - from.getTime()) / 1000);
      const pct = (p: number) =>
        lags.length ? lags[Math.min(lags.length - 1, Math.floor(p * lags.length))]! : NaN;
      const windowMs = to.getTime() - from.getTime();
      const fig: LevelFigures = {
        offered,
        runsPerSecond: Math.round(rate),
        lagMsP50: Math.round(pct(0.5)),
        lagMsP99: Math.round(pct(0.99)),
        saturated: rate < 0.95 * offered || pct(0.5) > 2000,
        cpuMsPerRun: Object.fromEntries(
          Object.entries(cpu)
            .filter(([k]) => k !== 'machineBusy')
            .map(([k, v]) => [k, Math.round((v / Math.max(1, n)) * 1000) / 1000]),
        ),
        coreShare: {
          injector: Math.round((cpu.injector! / windowMs) * 100) / 100,
          results: Math.round((cpu.results! / windowMs) * 100) / 100,
          machineBusy: Math.round(cpu.machineBusy! * 100) / 100,
        },
      };
      out.push(fig);
      log(
        `capacity ${type}: offered ${offered}/s -> ${fig.runsPerSecond}/s, lag p50 ${fig.lagMsP50} ms, cpu/run ${JSON.stringify(fig.cpuMsPerRun)}, ${JSON.stringify(fig.coreShare)}`,
      );
      if (fig.saturated && rate < 0.8 * offered) break;
    }
    await db('jobs').update({ next_run: null, schedule: null });
  } finally {
    for (const p of procs.reverse()) await stopProcess(p);
    await db.destroy().catch(() => undefined);
    await deleteVhost(vhost);
    await dropMysqlDatabase(dbName).catch(() => undefined);
  }
  const sustained = Math.max(0, ...out.filter((l) => !l.saturated).map((l) => l.runsPerSecond));
  // The highest rate any step finished at: on a shared machine a step can dip below 95 % by noise.
  const peak = Math.max(0, ...out.map((l) => l.runsPerSecond));
  return { queueType: type, levels: out, sustained, peak };
}

async function peersCapacity(jobs: number): Promise<unknown[]> {
  // The peers live in bench/peers with their own lock file (npm ci --prefix bench/peers).
  let peers: typeof import('./peers/capacity-peers');
  try {
    peers = await import('./peers/capacity-peers');
  } catch (err) {
    return [{ skipped: `bench/peers is not installed: ${(err as Error).message}` }];
  }
  const figures: unknown[] = [];
  for (const [name, port, aof] of [
    ['bullmq (redis AOF everysec)', 6391, true],
    ['bullmq (redis, no persistence)', 6392, false],
  ] as const) {
    let stopRedis: (() => Promise<void>) | undefined;
    try {
      stopRedis = await peers.startRedis(port, aof);
      const redisPids = () => pidsOf('redis-server', (l) => l.includes(`:${port}`));
      const f = await peers.bullmqCapacity(name, port, jobs, new CpuMeter(), redisPids);
      log(`capacity ${name}: ${Math.round(f.runsPerSecond)}/s`);
      figures.push(f);
    } catch (err) {
      figures.push({ system: name, error: (err as Error).message });
    } finally {
      await stopRedis?.().catch(() => undefined);
    }
  }
  const pgName = benchName('cronq_bench_cap');
  try {
    const url = await createPgDatabase(pgName);
    const f = await peers.pgbossCapacity(url, jobs, new CpuMeter(), () => pidsOf('postgres'));
    log(`capacity pg-boss: ${Math.round(f.runsPerSecond)}/s`);
    figures.push(f);
  } catch (err) {
    figures.push({ system: 'pg-boss', error: (err as Error).message, pg: `${PG.host}:${PG.port}` });
  } finally {
    await dropPgDatabase(pgName);
  }
  return figures;
}

async function main(): Promise<void> {
  const levels = arg('levels', '500,750,1000,1250,1500,1750,2000,2500').split(',').map(Number);
  const seconds = Number(arg('seconds', '10'));
  const types = arg('types', 'classic,quorum,quorum,classic').split(',') as QueueType[];
  const peerJobs = Number(arg('peers', '20000'));
  const cronq: Array<Awaited<ReturnType<typeof cronqCapacity>>> = [];
  for (const t of types) cronq.push(await cronqCapacity(t, levels, seconds));
  // Best of each type's passes: the default order (classic, quorum, quorum,
  // classic) gives both types the same share of a machine whose load drifts.
  const best = (t: QueueType, k: 'sustained' | 'peak') =>
    Math.max(0, ...cronq.filter((c) => c.queueType === t).map((c) => c[k])) || undefined;
  const classic = best('classic', 'sustained');
  const quorum = best('quorum', 'sustained');
  const classicPeak = best('classic', 'peak');
  const quorumPeak = best('quorum', 'peak');
  const peers = peerJobs > 0 ? await peersCapacity(peerJobs) : [];
  const report = {
    benchmark: 'capacity',
    settings: { levels, seconds, simRunnerProcesses: SIM_PROCESSES, peerJobs },
    cronq,
    quorumCostOfClassic:
      classic && quorum ? Math.round((1 - quorum / classic) * 1000) / 1000 : undefined,
    quorumPeakCostOfClassic:
      classicPeak && quorumPeak
        ? Math.round((1 - quorumPeak / classicPeak) * 1000) / 1000
        : undefined,
    sustained: { classic, quorum },
    peak: { classic: classicPeak, quorum: quorumPeak },
    targets: {
      centralTierRunsPerSecond: { target: 2000, measured: classic, met: (classic ?? 0) >= 2000 },
      quorumCostAtMost: {
        target: 0.25,
        met: classic && quorum ? 1 - quorum / classic <= 0.25 : undefined,
      },
    },
    peers,
  };
  process.stderr.write('\n' + capacityTable(report as never));
  process.stdout.write(JSON.stringify(report, null, 2) + '\n');
  process.exit(0);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
