/**
 * Web admin latency with a big database: 10,000 jobs in 100 categories and
 * 1,000,000 runs (100 per job). Serves the app in-process on port 0 and
 * times 200 sequential requests per URL over one keep-alive connection.
 *
 *   npm run bench:web                       (DATABASE_URL, default mysql://root@127.0.0.1/cronq_bench_web)
 *   node --import tsx bench/web.ts --keep   (keep the data for another round)
 *
 * Prints JSON: per URL p50/p99/mean/max in ms, plus the time the data took to load.
 */
import http from 'node:http';
import { loadConfig, parseDatabaseUrl } from '../src/core/config';
import { createDb, ensureDatabase, migrate } from '../src/core/db';
import { silentLogger } from '../src/core/logger';
import { createApp } from '../src/web/app';

const JOBS = 10_000;
const RUNS = 1_000_000;
const REQUESTS = 200;
const URL_DB = process.env.DATABASE_URL ?? 'mysql://root@127.0.0.1/cronq_bench_web';
const keep = process.argv.includes('--keep');

async function seed(
  db: ReturnType<typeof createDb>,
): Promise<{ seconds: number; reused: boolean }> {
  const t0 = Date.now();
  const [[have]] = (await db.raw(
    'SELECT (SELECT COUNT(*) FROM jobs) AS jobs, (SELECT COUNT(*) FROM runs) AS runs',
  )) as [[{ jobs: number; runs: number }]];
  if (Number(have.jobs) === JOBS && Number(have.runs) === RUNS) return { seconds: 0, reused: true };
  await db.raw('SET FOREIGN_KEY_CHECKS = 0');
  for (const t of ['events', 'runs', 'jobs', 'categories']) await db.raw(`TRUNCATE TABLE ${t}`);
  await db.raw('SET FOREIGN_KEY_CHECKS = 1');
  // MariaDB's SEQUENCE engine (seq_1_to_N) makes each table one INSERT ... SELECT.
  await db.raw(
    `INSERT INTO categories (id, name) SELECT seq, CONCAT('category-', LPAD(seq, 3, '0')) FROM seq_1_to_100`,
  );
  await db.raw(
    `INSERT INTO jobs (id, name, category_id, schedule, \`interval\`, next_run, routing_key, command, run_now, last_run_status, current_status)
     SELECT seq, CONCAT('job-', LPAD(seq, 5, '0')), 1 + (seq - 1) DIV 100,
            CASE seq % 3 WHEN 0 THEN 'R/2024-01-01T00:00:00Z/PT5M' WHEN 1 THEN '*/15 * * * *' ELSE 'R/2024-01-31T00:00:00Z/P1M' END,
            CASE seq % 3 WHEN 0 THEN FROM_UNIXTIME(300) ELSE NULL END,
            UTC_TIMESTAMP(3) + INTERVAL (seq % 600) SECOND, 'default',
            CONCAT('cd /srv/app-', seq, ' && ./run-task --id ', seq, '; echo done'), 0,
            CASE seq % 40 WHEN 0 THEN 'failed' WHEN 1 THEN 'timed_out' WHEN 2 THEN 'lost' ELSE 'succeeded' END, 'succeeded'
     FROM seq_1_to_${JOBS}`,
  );
  const chunk = 100_000;
  for (let from = 0; from < RUNS; from += chunk) {
    await db.raw(
      `INSERT INTO runs (run_id, job_id, job_name, scheduled_for, triggered_by, status, routing_key, host, queued_at, published_at, started_at, finished_at, return_code, run_time, output_tail)
       SELECT MD5(s), 1 + s % ${JOBS}, CONCAT('job-', LPAD(1 + s % ${JOBS}, 5, '0')), t, 'schedule',
              CASE s % 50 WHEN 0 THEN 'failed' WHEN 1 THEN 'timed_out' WHEN 2 THEN 'lost' ELSE 'succeeded' END,
              'default', CONCAT('runner-', s % 7, '.example.com'), t, t, t + INTERVAL 1 SECOND, t + INTERVAL 3 SECOND,
              CASE s % 50 WHEN 0 THEN 1 WHEN 1 THEN NULL WHEN 2 THEN NULL ELSE 0 END, 2.0, 'ok\n'
       FROM (SELECT seq AS s, UTC_TIMESTAMP(3) - INTERVAL (seq DIV ${JOBS}) MINUTE - INTERVAL 1 HOUR AS t FROM seq_${from}_to_${from + chunk - 1}) x`,
    );
  }
  await db.raw('ANALYZE TABLE jobs, runs, categories');
  return { seconds: (Date.now() - t0) / 1000, reused: false };
}

function get(
  agent: http.Agent,
  port: number,
  path: string,
): Promise<{ status: number; ms: number }> {
  const t0 = process.hrtime.bigint();
  return new Promise((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port, path, agent }, (res) => {
        res.resume();
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, ms: Number(process.hrtime.bigint() - t0) / 1e6 }),
        );
      })
      .on('error', reject);
  });
}

function pct(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

async function main(): Promise<void> {
  const cfg = parseDatabaseUrl(URL_DB);
  await ensureDatabase(cfg);
  const db = createDb(cfg, { poolMax: 10 });
  await migrate(db);
  const loaded = await seed(db);
  const config = loadConfig({ DATABASE_URL: URL_DB });
  const server = http.createServer(createApp({ db, config, logger: silentLogger() }));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const [[aRun]] = (await db.raw(
    'SELECT run_id FROM runs WHERE job_id = 4321 ORDER BY queued_at DESC LIMIT 1',
  )) as [[{ run_id: string }]];
  const rand = () => 1 + Math.floor(Math.random() * JOBS);
  const urls: Array<[string, () => string]> = [
    ['/', () => '/'],
    ['/job/<id>', () => `/job/${rand()}`],
    ['/api/jobs?per_page=100', () => '/api/jobs?per_page=100'],
    ['/?page=<random>', () => `/?page=${1 + Math.floor(Math.random() * 100)}`],
    ['/?q=<job name>', () => `/?q=job-0${rand() % 1000}`],
    [
      '/api/jobs?per_page=100&page=<random>',
      () => `/api/jobs?per_page=100&page=${Math.floor(Math.random() * 100)}`,
    ],
    ['/api/jobs/<id>', () => `/api/jobs/${rand()}`],
    ['/run/<run_id>', () => `/run/${aRun.run_id}`],
    ['/failures', () => '/failures'],
    ['/?sort=failure', () => '/?sort=failure'],
    ['/?sort=next', () => '/?sort=next'],
    ['/?status=failed', () => '/?status=failed'],
    ['/job/<id>?runs_status=failed', () => `/job/${rand()}?runs_status=failed`],
    ['/job/<id>?runs_page=2', () => `/job/${rand()}?runs_page=2`],
    ['/system', () => '/system'],
    ['/failures?window=7d', () => '/failures?window=7d'],
  ];
  const results: Record<string, unknown> = {};
  for (const [name, path] of urls) {
    for (let i = 0; i < 10; i++) await get(agent, port, path()); // warm-up: templates compiled, pool filled
    const times: number[] = [];
    for (let i = 0; i < REQUESTS; i++) {
      const r = await get(agent, port, path());
      if (r.status !== 200) throw new Error(`${name}: HTTP ${r.status}`);
      times.push(r.ms);
    }
    times.sort((a, b) => a - b);
    results[name] = {
      p50_ms: +pct(times, 50).toFixed(1),
      p99_ms: +pct(times, 99).toFixed(1),
      mean_ms: +(times.reduce((a, b) => a + b, 0) / times.length).toFixed(1),
      max_ms: +times[times.length - 1]!.toFixed(1),
    };
  }
  // Replacing a whole category of 10,000 jobs: new, then unchanged, then every command changed.
  const put = async (query: string, jobs: unknown[]) => {
    const t0 = process.hrtime.bigint();
    const res = await fetch(`http://127.0.0.1:${port}/api/category/bench-put${query}`, {
      method: 'PUT',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ category: 'bench-put', jobs }),
    });
    const body = await res.text();
    if (res.status !== 200)
      throw new Error(`PUT ${query}: HTTP ${res.status} ${body.slice(0, 200)}`);
    return +(Number(process.hrtime.bigint() - t0) / 1e6).toFixed(0);
  };
  const defs = (cmd: string) =>
    Array.from({ length: 10_000 }, (_, i) => ({
      name: `put-job-${i}`,
      schedule: i % 2 ? '*/5 * * * *' : 'R/2024-01-01T00:00:00Z/PT1H',
      command: `${cmd} ${i}`,
    }));
  const putResults = {
    dry_run_new_ms: await put('?dry_run=1', defs('echo')),
    create_ms: await put('', defs('echo')),
    unchanged_ms: await put('', defs('echo')),
    all_commands_changed_ms: await put('', defs('printf')),
    remove_all_ms: await put('', []),
  };
  await db.raw("DELETE FROM categories WHERE name = 'bench-put'");
  agent.destroy();
  await new Promise((r) => server.close(r));
  if (!keep) await db.raw('DROP DATABASE ??', [cfg.database]);
  await db.destroy();
  console.log(
    JSON.stringify(
      {
        bench: 'web',
        jobs: JOBS,
        runs: RUNS,
        requests_per_url: REQUESTS,
        seed_seconds: loaded.seconds,
        seed_reused: loaded.reused,
        targets: { pages_p99_ms: 150, api_p99_ms: 50 },
        results,
        put_category_10000_jobs: putResults,
      },
      null,
      2,
    ),
  );
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
