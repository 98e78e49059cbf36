/**
 * End-to-end comparison: CronQ, the bare-pipeline ceiling, BullMQ and
 * pg-boss on the same two workloads, in the same run, repeated.
 *
 *   node --import tsx bench/e2e.ts            (prints JSON)
 *
 * Each repetition runs every system in turn (rotating the order, so none
 * always goes first on a cooler machine): set up its own database/vhost and
 * two workers, burst, steady, tear down. Only one system is alive at a
 * time, so no idle poller loads the machine during another's measurement.
 * Ratios are taken inside each repetition, then summarised.
 *
 * Settings (environment): BENCH_E2E_REPS (3), BENCH_E2E_BURST_JOBS (1000),
 * BENCH_E2E_STEADY_JOBS (200), BENCH_E2E_STEADY_SECONDS (60), BENCH_E2E_SYSTEMS
 * (comma list; default ceiling,cronq,cronq_policies,bullmq,pgboss; cronq_policies
 * is CronQ with every job overlap forbid + retries), BENCH_E2E_PEER_OUTPUT
 * (1: the ceiling and the peers capture each run's output and store it with
 * the result, as CronQ always does; default: they throw it away, see
 * bench/lib/spawn-true.ts), BENCH_CRONQ_METRICS (1: CronQ's daemons serve
 * /metrics and are scraped every 5 s; bench/e2e/cronq.ts).
 */
import { BarePipeline } from './e2e/ceiling';
import { BENCH_POLICIES, CronqSystem } from './e2e/cronq';
import type { BenchSystem, BurstFigures } from './e2e/system';
import type { SteadyFigures } from './lib/occurrences';
import { spread, type Spread } from './lib/stats';
import { holdSharedLock } from './lib/lock';
import { cpuPerRun, sampleCpu, type CpuSample } from './lib/cpu';

const REPS = Number(process.env.BENCH_E2E_REPS ?? 3);
const BURST_JOBS = Number(process.env.BENCH_E2E_BURST_JOBS ?? 1000);
const STEADY_JOBS = Number(process.env.BENCH_E2E_STEADY_JOBS ?? 200);
const STEADY_SECONDS = Number(process.env.BENCH_E2E_STEADY_SECONDS ?? 60);
const PEER_OUTPUT = process.env.BENCH_E2E_PEER_OUTPUT === '1';
// The worker processes inherit it (bench/lib/workers.ts passes process.env on).
if (PEER_OUTPUT) process.env.BENCH_KEEP_OUTPUT = '1';
else delete process.env.BENCH_KEEP_OUTPUT;
const SYSTEMS = (process.env.BENCH_E2E_SYSTEMS ?? 'ceiling,cronq,cronq_policies,bullmq,pgboss')
  .split(',')
  .map((s) => s.trim());

const factories: Record<string, () => Promise<BenchSystem>> = {
  ceiling: async () => new BarePipeline(),
  cronq: async () => new CronqSystem(),
  cronq_policies: async () => new CronqSystem(BENCH_POLICIES),
  // Loaded only when measured: the peers are installed apart (bench/peers),
  // and CronQ against its ceiling must run without them.
  bullmq: async () => new (await import('./peers/bullmq')).BullmqSystem(),
  pgboss: async () => new (await import('./peers/pgboss')).PgBossSystem(),
};

interface Repetition {
  order: string[];
  burst: Record<string, BurstFigures | { error: string }>;
  steady: Record<string, SteadyFigures | { error: string }>;
}

function log(msg: string): void {
  process.stderr.write(`[bench e2e ${new Date().toISOString()}] ${msg}\n`);
}

/** Reject after `ms` so one stuck system (e.g. a broker restarted under it) cannot stall the run. */
function withDeadline<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const t = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms / 1000} s`)), ms);
  });
  return Promise.race([p, t]).finally(() => clearTimeout(timer));
}

async function measure(
  name: string,
  rep: Repetition,
): Promise<Record<string, string | number | boolean> | undefined> {
  const system = await factories[name]!();
  const release = await holdSharedLock();
  try {
    log(`${name}: setup`);
    await withDeadline(system.setup(), 180_000, `${name} setup`);
    try {
      let before: CpuSample | undefined;
      const groups = () => ({ own: { ...system.pids(), driver: [process.pid] } });
      const burst = await withDeadline(
        system.burst(BURST_JOBS, () => (before = sampleCpu(groups()))),
        180_000,
        `${name} burst`,
      );
      if (before) burst.cpuMsPerRun = cpuPerRun(before, sampleCpu(groups()), BURST_JOBS);
      rep.burst[name] = burst;
      log(`${name}: burst ${JSON.stringify(rep.burst[name])}`);
    } catch (err) {
      rep.burst[name] = { error: (err as Error).message };
      log(`${name}: burst failed: ${(err as Error).message}`);
    }
    if (name !== 'ceiling') {
      try {
        rep.steady[name] = await withDeadline(
          system.steady(STEADY_JOBS, STEADY_SECONDS),
          (STEADY_SECONDS + 150) * 1000,
          `${name} steady`,
        );
        log(`${name}: steady ${JSON.stringify(rep.steady[name])}`);
      } catch (err) {
        rep.steady[name] = { error: (err as Error).message };
        log(`${name}: steady failed: ${(err as Error).message}`);
      }
    }
    return system.settings();
  } catch (err) {
    rep.burst[name] = { error: `setup: ${(err as Error).message}` };
    if (name !== 'ceiling') rep.steady[name] = { error: `setup: ${(err as Error).message}` };
    log(`${name}: setup failed: ${(err as Error).message}`);
    return undefined;
  } finally {
    await withDeadline(system.teardown(), 120_000, `${name} teardown`).catch((err: Error) =>
      log(`${name}: ${err.message}`),
    );
    release();
  }
}

function num<T>(v: T | { error: string } | undefined, pick: (x: T) => number): number {
  if (!v || (v as { error?: string }).error !== undefined) return NaN;
  return pick(v as T);
}

/** Summaries of each figure and of each CronQ/other ratio, across repetitions. */
export function summarise(reps: Repetition[], systems: string[]): Record<string, Spread> {
  const out: Record<string, Spread> = {};
  const add = (key: string, values: number[]) => (out[key] = spread(values));
  for (const s of systems) {
    add(
      `burst.${s}.completion_ms`,
      reps.map((r) => num<BurstFigures>(r.burst[s], (b) => b.completionMs)),
    );
    add(
      `burst.${s}.runs_per_s`,
      reps.map((r) => num<BurstFigures>(r.burst[s], (b) => b.runsPerSecond)),
    );
    const cpuKeys = new Set<string>();
    for (const r of reps)
      for (const k of Object.keys((r.burst[s] as BurstFigures | undefined)?.cpuMsPerRun ?? {}))
        cpuKeys.add(k);
    for (const k of cpuKeys)
      add(
        `cpu.${s}.${k}`,
        reps.map((r) => num<BurstFigures>(r.burst[s], (b) => b.cpuMsPerRun?.[k] ?? NaN)),
      );
    if (s === 'ceiling') continue;
    add(
      `steady.${s}.runs_per_s`,
      reps.map((r) => num<SteadyFigures>(r.steady[s], (x) => x.runsPerSecond)),
    );
    add(
      `steady.${s}.lag_p50_ms`,
      reps.map((r) => num<SteadyFigures>(r.steady[s], (x) => x.lagP50Ms)),
    );
    add(
      `steady.${s}.lag_p99_ms`,
      reps.map((r) => num<SteadyFigures>(r.steady[s], (x) => x.lagP99Ms)),
    );
    add(
      `steady.${s}.missed`,
      reps.map((r) => num<SteadyFigures>(r.steady[s], (x) => x.missed)),
    );
    add(
      `steady.${s}.duplicated`,
      reps.map((r) => num<SteadyFigures>(r.steady[s], (x) => x.duplicated)),
    );
  }
  if (systems.includes('cronq')) {
    for (const other of systems.filter((s) => s !== 'cronq')) {
      // Burst: CronQ runs/s over the other's (> 1 means CronQ is faster).
      add(
        `ratio.burst_runs_per_s.cronq_over_${other}`,
        reps.map(
          (r) =>
            num<BurstFigures>(r.burst.cronq, (b) => b.runsPerSecond) /
            num<BurstFigures>(r.burst[other], (b) => b.runsPerSecond),
        ),
      );
      if (other === 'ceiling') continue;
      add(
        `ratio.steady_runs_per_s.cronq_over_${other}`,
        reps.map(
          (r) =>
            num<SteadyFigures>(r.steady.cronq, (x) => x.runsPerSecond) /
            num<SteadyFigures>(r.steady[other], (x) => x.runsPerSecond),
        ),
      );
      // Lag: CronQ's over the other's (< 1 means CronQ dispatches sooner).
      add(
        `ratio.lag_p50.cronq_over_${other}`,
        reps.map(
          (r) =>
            num<SteadyFigures>(r.steady.cronq, (x) => x.lagP50Ms) /
            num<SteadyFigures>(r.steady[other], (x) => x.lagP50Ms),
        ),
      );
      add(
        `ratio.lag_p99.cronq_over_${other}`,
        reps.map(
          (r) =>
            num<SteadyFigures>(r.steady.cronq, (x) => x.lagP99Ms) /
            num<SteadyFigures>(r.steady[other], (x) => x.lagP99Ms),
        ),
      );
    }
  }
  return out;
}

export async function runE2e(): Promise<Record<string, unknown>> {
  const reps: Repetition[] = [];
  const settings: Record<string, Record<string, string | number | boolean>> = {};
  for (let i = 0; i < REPS; i++) {
    const order = SYSTEMS.map((_, k) => SYSTEMS[(k + i) % SYSTEMS.length]!);
    const rep: Repetition = { order, burst: {}, steady: {} };
    log(`repetition ${i + 1}/${REPS}: ${order.join(' -> ')}`);
    for (const name of order) {
      const s = await measure(name, rep);
      if (s) settings[name] = s;
    }
    reps.push(rep);
  }
  return {
    workload: {
      burstJobs: BURST_JOBS,
      steadyJobs: STEADY_JOBS,
      steadySeconds: STEADY_SECONDS,
      steadyWindow: 'occurrences from start+2 s to end (first 2 s are warm-up)',
      repetitions: REPS,
      command: '/bin/sh -c true',
      peerOutput: PEER_OUTPUT,
    },
    settings,
    summary: summarise(reps, SYSTEMS),
    repetitions: reps,
  };
}

if (require.main === module) {
  // Exit through 'exit' so the helpers' handlers kill every process started.
  process.once('SIGTERM', () => process.exit(143));
  process.once('SIGINT', () => process.exit(130));
  runE2e()
    .then((r) => {
      process.stdout.write(JSON.stringify(r, null, 2) + '\n');
      process.exit(0);
    })
    .catch((err) => {
      console.error(err);
      process.exit(1);
    });
}
