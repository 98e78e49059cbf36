/**
 * Scale: does the injector's cycle cost grow with the number of jobs
 * defined, or only with the number due?
 *
 *   node --import tsx bench/scale.ts          (prints JSON)
 *
 * For each case, a fresh database holds N jobs (PT1H schedules, next_run far
 * ahead), and before every cycle D of them, spread over the id range, are
 * made due. One cycle is what the injector does on a wake-up: its probe
 * query, then claimDueJobs() in batches of CRONQ_INJECTOR_BATCH_SIZE until a
 * claim comes back short: the real functions from src/injector, timed from
 * the first query to the last commit. Publishing is left out: it costs the
 * same per due job whatever N is (it never reads the jobs table).
 *
 *   a: 10,000 jobs, 1% (100) due      b: 100,000 jobs, 1% (1,000) due
 *   c: 100,000 jobs, 100 due (0.1%)   idle probe at 10,000 and 100,000
 *
 * "Must not grow with the total" is read two ways: b/a per due job, and c/a
 * per cycle (same due count, ten times the jobs). Both should be near 1.
 * BENCH_SCALE_CYCLES (default 15) cycles per case; the median is reported.
 */
import os from 'node:os';
import mysql from 'mysql2/promise';
import { createDb, migrate, type Knex } from '../src/core/db';
import { parseDatabaseUrl } from '../src/core/config';
import { claimDueJobs, probe } from '../src/injector';
import { benchName, createMysqlDatabase, dropMysqlDatabase, MYSQL } from './lib/services';
import { spread, round, type Spread } from './lib/stats';

const CYCLES = Number(process.env.BENCH_SCALE_CYCLES ?? 15);
const BATCH = Number(process.env.CRONQ_INJECTOR_BATCH_SIZE ?? 500);
const REPUBLISH_MS = 30_000;

function log(msg: string): void {
  process.stderr.write(`[bench scale ${new Date().toISOString()}] ${msg}\n`);
}

interface CaseResult {
  jobs: number;
  due: number;
  cycleMs: Spread;
  perDueJobMs: Spread;
  probeIdleMs: Spread;
}

async function withJobs<T>(
  total: number,
  fn: (db: Knex, pool: mysql.Pool) => Promise<T>,
): Promise<T> {
  const name = benchName('cronq_bench_scale');
  const url = await createMysqlDatabase(name);
  const db = createDb(parseDatabaseUrl(url), { poolMax: 4 });
  const pool = mysql.createPool({ ...MYSQL, database: name, connectionLimit: 2, timezone: 'Z' });
  try {
    await migrate(db);
    const [cat] = (await pool.query('INSERT INTO categories (name) VALUES (?)', [
      'scale',
    ])) as unknown as [{ insertId: number }];
    const start = new Date(
      Math.floor(Date.now() / 3_600_000) * 3_600_000 - 3_600_000,
    ).toISOString();
    const chunk = 5000;
    for (let i = 0; i < total; i += chunk) {
      const rows = [];
      for (let k = i; k < Math.min(total, i + chunk); k++)
        rows.push([
          `job-${k}`,
          `R/${start}/PT1H`,
          '2099-01-01 00:00:00.000',
          'true',
          'default',
          cat.insertId,
        ]);
      await pool.query(
        'INSERT INTO jobs (name, schedule, next_run, command, routing_key, category_id) VALUES ?',
        [rows],
      );
    }
    await pool.query('ANALYZE TABLE jobs');
    return await fn(db, pool);
  } finally {
    await db.destroy().catch(() => undefined);
    await pool.end().catch(() => undefined);
    await dropMysqlDatabase(name).catch(() => undefined);
  }
}

async function measureCase(
  db: Knex,
  pool: mysql.Pool,
  total: number,
  due: number,
): Promise<CaseResult> {
  const [[range]] = (await pool.query(
    'SELECT MIN(id) AS lo, MAX(id) AS hi FROM jobs',
  )) as unknown as [[{ lo: number; hi: number }]];
  const claimant = `${os.hostname()}.bench`;
  const cycles: number[] = [];
  const perJob: number[] = [];
  const probes: number[] = [];
  for (let c = 0; c < CYCLES + 1; c++) {
    // Idle probe: nothing due.
    const p0 = performance.now();
    await probe(db, REPUBLISH_MS);
    const idle = performance.now() - p0;
    // Make `due` jobs due, spread evenly over the id range (a different set each cycle).
    const step = Math.floor(total / due);
    const ids = Array.from({ length: due }, (_, i) => range.lo + ((i * step + c) % total));
    await pool.query(
      'UPDATE jobs SET next_run = UTC_TIMESTAMP(3) - INTERVAL 1 SECOND WHERE id IN (?)',
      [ids],
    );
    const t0 = performance.now();
    const p = await probe(db, REPUBLISH_MS);
    let claimed = 0;
    for (;;) {
      const r = await claimDueJobs(db, { batchSize: BATCH, includeRunNow: p.runNow, claimant });
      claimed += r.jobs;
      if (!r.full) break;
    }
    const ms = performance.now() - t0;
    if (claimed !== due) throw new Error(`cycle claimed ${claimed} jobs, expected ${due}`);
    // What the injector does once the broker confirms (untimed): otherwise the
    // unpublished runs pile up and the probe's stale-run check scans them all.
    await pool.query(
      "UPDATE runs SET published_at = UTC_TIMESTAMP(3) WHERE published_at IS NULL AND status = 'queued'",
    );
    if (c === 0) continue; // the first cycle warms the buffer pool
    cycles.push(ms);
    perJob.push(ms / due);
    probes.push(idle);
  }
  return {
    jobs: total,
    due,
    cycleMs: spread(cycles),
    perDueJobMs: spread(perJob),
    probeIdleMs: spread(probes),
  };
}

export async function runScale(): Promise<Record<string, unknown>> {
  log('10,000 jobs');
  const a = await withJobs(10_000, (db, pool) => measureCase(db, pool, 10_000, 100));
  log('100,000 jobs');
  const [b, c] = await withJobs(100_000, async (db, pool) => [
    await measureCase(db, pool, 100_000, 1000),
    await measureCase(db, pool, 100_000, 100),
  ]);
  const ratio = (x: Spread, y: Spread) => round(x.median / y.median, 3);
  return {
    what: 'injector wake-up: probe + claimDueJobs batches until short (DB side; publishing excluded)',
    batchSize: BATCH,
    cyclesPerCase: CYCLES,
    cases: { a_10k_1pct: a, b_100k_1pct: b, c_100k_100due: c },
    ratios: {
      per_due_job_100k_over_10k: ratio(b!.perDueJobMs, a.perDueJobMs),
      cycle_same_due_100k_over_10k: ratio(c!.cycleMs, a.cycleMs),
      idle_probe_100k_over_10k: ratio(b!.probeIdleMs, a.probeIdleMs),
    },
  };
}

if (require.main === module) {
  runScale()
    .then((r) => {
      process.stdout.write(JSON.stringify(r, null, 2) + '\n');
      process.exit(0);
    })
    .catch((err) => {
      console.error(err);
      process.exit(1);
    });
}
