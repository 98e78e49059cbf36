/**
 * Runner benchmark (prints JSON):   npm run bench:runner
 *
 * - runs/s of `true` through the real cronq-runner (bin/, info logging, job
 *   log on disk, starting + finished confirmed) at concurrency 1 and 16, as
 *   a ratio to a bare child_process.spawn('/bin/sh', ['-c', 'true']) loop at
 *   the same concurrency measured in the same run (target >= 0.7);
 * - runner overhead per run, from the runner's own measurements: run taken
 *   into a slot -> command released in its forked shell, and command exited
 *   -> `finished` confirmed; p50/p99 in ms;
 * - RSS of an idle runner (target < 80 MB).
 *
 * The queue is loaded before the runner starts; the rate is taken from the
 * runner's own timestamps (first start_time to last finished x-send-datetime).
 * Results are consumed while the runner works, as cronq-results would.
 * Settings: BENCH_RUNS_C1 (1500), BENCH_RUNS_C16 (3000), BENCH_REPS (3); the ratio reported is the median of the repetitions' ratios (bare and runner measured back to back in each).
 * The run counts make each measurement a few seconds long: with 400 runs
 * (about one second) a quarter of the runner's figure was its start-up and
 * warm-up, not its steady rate.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createTestVhost, waitFor, type TestVhost } from '../test/helpers/services';
import { startCommand } from '../test/helpers/processes';
import { JobPublisher, ResultsCollector, jobMessage } from '../test/helpers/runner-harness';

const RUNS: Record<number, number> = {
  1: Number(process.env.BENCH_RUNS_C1 ?? 1500),
  16: Number(process.env.BENCH_RUNS_C16 ?? 3000),
};
const REPS = Number(process.env.BENCH_REPS ?? 3);

async function bareLoop(runs: number, concurrency: number): Promise<number> {
  let started = 0;
  const t0 = process.hrtime.bigint();
  const worker = async () => {
    while (started < runs) {
      started += 1;
      await new Promise<void>((resolve, reject) => {
        const c = spawn('/bin/sh', ['-c', 'true'], {
          stdio: ['ignore', 'pipe', 'pipe'],
          detached: true,
        });
        c.on('error', reject);
        c.on('close', () => resolve());
      });
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return runs / (Number(process.hrtime.bigint() - t0) / 1e9);
}

interface RunnerFigures {
  runsPerSecond: number;
  startOverheadMs: { p50: number | null; p99: number | null };
  finishOverheadMs: { p50: number | null; p99: number | null };
}

async function runnerLoop(
  vhost: TestVhost,
  jobs: JobPublisher,
  collector: ResultsCollector,
  runs: number,
  concurrency: number,
): Promise<RunnerFigures> {
  const queue = `bench_c${concurrency}_${Date.now()}`;
  await jobs.declare(queue);
  const ids = new Set<string>();
  for (let i = 0; i < runs; i++) {
    const msg = jobMessage({ command: 'true', name: 'bench true', jobId: 1 });
    ids.add(msg.run_id);
    await jobs.publish(queue, msg);
  }
  // Results are consumed as they come, as cronq-results would (a queue with a
  // live consumer confirms persistent messages sooner than one filling up);
  // the collector reconnects if someone else's test restarts the broker.
  const first = collector.results.length;
  const mine = () => collector.results.slice(first).filter((r) => ids.has(r.run_id));
  const logDir = mkdtempSync(path.join(os.tmpdir(), 'cronq-bench-runner-'));
  const runner = startCommand('cronq-runner', {
    env: {
      RABBITMQ_URL: vhost.url,
      LOG_PATH: logDir,
      CRONQ_LOG_LEVEL: 'info',
      CRONQ_HEARTBEAT_SECONDS: '3600',
    },
    args: ['--queue', queue, '--concurrency', String(concurrency)],
  });
  await waitFor(() => mine().length >= runs * 2, {
    timeoutMs: 300_000,
    intervalMs: 200,
    message: 'all results',
  });
  runner.kill('SIGTERM');
  await runner.exited;
  rmSync(logDir, { recursive: true, force: true });
  const results = mine();
  const starts = results.filter((r) => r.type === 'starting').map((r) => Date.parse(r.start_time!));
  const ends = results
    .filter((r) => r.type === 'finished')
    .map((r) => Date.parse(r['x-send-datetime']));
  const failed = results.filter((r) => r.type === 'finished' && r.status !== 'succeeded').length;
  if (ends.length !== runs || failed > 0)
    throw new Error(`expected ${runs} successful runs, got ${ends.length} (${failed} failed)`);
  const stopped = runner.lines().find((l) => l.includes('"msg":"runner stopped"'));
  const summary = stopped
    ? (JSON.parse(stopped) as {
        startOverheadMs: RunnerFigures['startOverheadMs'];
        finishOverheadMs: RunnerFigures['finishOverheadMs'];
      })
    : undefined;
  return {
    runsPerSecond: runs / ((Math.max(...ends) - Math.min(...starts)) / 1000),
    startOverheadMs: {
      p50: summary?.startOverheadMs.p50 ?? null,
      p99: summary?.startOverheadMs.p99 ?? null,
    },
    finishOverheadMs: {
      p50: summary?.finishOverheadMs.p50 ?? null,
      p99: summary?.finishOverheadMs.p99 ?? null,
    },
  };
}

async function idleRss(vhost: TestVhost): Promise<number> {
  const logDir = mkdtempSync(path.join(os.tmpdir(), 'cronq-bench-runner-'));
  const runner = startCommand('cronq-runner', {
    env: { RABBITMQ_URL: vhost.url, LOG_PATH: logDir, CRONQ_LOG_LEVEL: 'info' },
    args: ['--queue', `bench_idle_${Date.now()}`],
  });
  await runner.waitForLine('AMQP connected');
  await new Promise((r) => setTimeout(r, 3000));
  const status = readFileSync(`/proc/${runner.child.pid}/status`, 'utf8');
  const kb = Number(/VmRSS:\s+(\d+) kB/.exec(status)![1]);
  await runner.stop();
  rmSync(logDir, { recursive: true, force: true });
  return Math.round((kb / 1024) * 10) / 10;
}

const round = (n: number | null, d = 2) => (n === null ? null : Math.round(n * 10 ** d) / 10 ** d);

async function main(): Promise<void> {
  const vhost = await createTestVhost();
  const jobs = new JobPublisher(vhost.url);
  const collector = new ResultsCollector(vhost.url);
  await collector.start();
  try {
    const out: Record<string, unknown> = {};
    for (const c of [1, 16]) {
      const reps = [];
      for (let r = 0; r < REPS; r++) {
        const bare = await bareLoop(RUNS[c]!, c);
        const runner = await runnerLoop(vhost, jobs, collector, RUNS[c]!, c);
        reps.push({
          bareRunsPerSecond: round(bare, 1),
          runnerRunsPerSecond: round(runner.runsPerSecond, 1),
          ratio: round(runner.runsPerSecond / bare),
          startOverheadMs: runner.startOverheadMs,
          finishOverheadMs: runner.finishOverheadMs,
        });
      }
      const ratios = reps.map((r) => r.ratio!).sort((a, b) => a - b);
      out[`concurrency${c}`] = {
        runs: RUNS[c],
        medianRatio: ratios[Math.floor(ratios.length / 2)],
        target: 0.7,
        reps,
      };
    }
    out.idleRssMB = await idleRss(vhost);
    out.idleRssTargetMB = 80;
    out.machine = {
      cpus: os.cpus().length,
      node: process.version,
      loadavg: os.loadavg().map((l) => round(l)),
    };
    process.stdout.write(JSON.stringify(out, null, 2) + '\n');
  } finally {
    await jobs.close();
    await collector.close();
    await vhost.drop();
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`bench:runner: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
