/**
 * Pruner throughput and how long it holds writers up
 * (`node --import tsx bench/pruner.ts [--events N] [--interval K]`, prints JSON).
 *
 * N events of 100 jobs (two per run, N/2 runs, all final) spread over 60
 * days; then the real `cronq-pruner --older-than 30d` runs as a process
 * while a writer inserts one event per 20 ms, as a results consumer would.
 * Reported: rows removed per second, and the writer's insert latencies
 * during the prune (p50/p99/max): a long-locking DELETE would show as a max
 * of seconds.
 */
import { parseArgs } from 'node:util';
import { performance } from 'node:perf_hooks';
import { createTestDatabase } from '../test/helpers/services';
import { runCommand } from '../test/helpers/processes';

const { values } = parseArgs({
  options: { events: { type: 'string' }, interval: { type: 'string' } },
});
const EVENTS = Number(values.events ?? 400_000);
const INTERVAL = values.interval ?? '1000';
const JOBS = 100;
const DAY_S = 86_400;

async function main(): Promise<void> {
  const t = await createTestDatabase();
  try {
    const db = t.db;
    await db('categories').insert({ id: 1, name: 'bench' });
    await db('jobs').insert(
      Array.from({ length: JOBS }, (_, i) => ({
        id: i + 1,
        name: `job ${i + 1}`,
        category_id: 1,
        command: 'true',
      })),
    );
    const seedStart = performance.now();
    const RUNS = EVENTS / 2;
    const CHUNK = 5000;
    for (let r0 = 0; r0 < RUNS; r0 += CHUNK) {
      const runs: object[] = [];
      const events: object[] = [];
      for (let r = r0; r < Math.min(RUNS, r0 + CHUNK); r += 1) {
        // Time goes forward with the run number: oldest first, as in life.
        const at = new Date(Date.now() - Math.floor(((RUNS - r) / RUNS) * 60 * DAY_S) * 1000);
        const runId = r.toString(16).padStart(32, '0');
        const job = (r % JOBS) + 1;
        runs.push({
          run_id: runId,
          job_id: job,
          scheduled_for: at,
          status: 'succeeded',
          queued_at: at,
          started_at: at,
          finished_at: at,
        });
        events.push(
          { job_id: job, run_id: runId, type: 'starting', datetime: at, host: 'h' },
          { job_id: job, run_id: runId, type: 'finished', datetime: at, host: 'h', return_code: 0 },
        );
      }
      await db('runs').insert(runs);
      await db('events').insert(events);
    }
    const seedMs = performance.now() - seedStart;

    // A writer beside the pruner, measuring how long each insert waits.
    const latencies: number[] = [];
    let writing = true;
    const writer = (async () => {
      while (writing) {
        const s = performance.now();
        await db('events').insert({
          job_id: 1,
          run_id: 'f'.repeat(32),
          type: 'heartbeat',
          datetime: new Date(),
          host: 'w',
        });
        latencies.push(performance.now() - s);
        await new Promise((r) => setTimeout(r, 20));
      }
    })();
    const start = performance.now();
    const r = await runCommand('cronq-pruner', {
      args: ['--older-than', '30d', '--interval', INTERVAL],
      env: { DATABASE_URL: t.url },
      timeoutMs: 600_000,
    });
    const pruneMs = performance.now() - start;
    writing = false;
    await writer;
    if (r.code !== 0) throw new Error(`pruner failed: ${r.stderr}`);
    const m = /removed (\d+) events and (\d+) runs/.exec(r.stdout)!;
    const removedEvents = Number(m[1]);
    const removedRuns = Number(m[2]);
    latencies.sort((a, b) => a - b);
    const q = (p: number) =>
      Math.round(
        latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))]! * 10,
      ) / 10;
    process.stdout.write(
      `${JSON.stringify(
        {
          bench: 'pruner --older-than 30d',
          events: EVENTS,
          runs: RUNS,
          interval: Number(INTERVAL),
          seed_s: Math.round(seedMs / 100) / 10,
          removed_events: removedEvents,
          removed_runs: removedRuns,
          prune_s: Math.round(pruneMs / 100) / 10,
          rows_per_s: Math.round((removedEvents + removedRuns) / (pruneMs / 1000)),
          writer_inserts: latencies.length,
          writer_latency_ms: { p50: q(0.5), p99: q(0.99), max: q(1) },
        },
        null,
        2,
      )}\n`,
    );
  } finally {
    await t.drop();
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
