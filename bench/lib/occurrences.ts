/**
 * The steady-state figures, computed the same way for every system from one
 * record per execution: which job, which occurrence (its scheduled time),
 * when the worker began it (just before spawning the command) and when it
 * finished.
 *
 * - dispatch lag = startedAt - scheduledFor (worker start, not publish: the
 *   only instant all three systems have in common);
 * - runs/s = executions that finished inside the window / window length;
 * - missed = occurrences on a job's 1-second grid inside the window with no
 *   execution; duplicated = executions beyond the first of one occurrence.
 */
import { percentile } from './stats';

export interface ExecutionRecord {
  job: string;
  scheduledFor: number;
  startedAt: number;
  finishedAt: number;
}

export interface SteadyFigures {
  windowSeconds: number;
  jobs: number;
  executions: number;
  runsPerSecond: number;
  lagP50Ms: number;
  lagP99Ms: number;
  lagMaxMs: number;
  missed: number;
  duplicated: number;
}

export function analyseSteady(
  records: readonly ExecutionRecord[],
  opts: { from: number; to: number; periodMs: number; jobs: readonly string[] },
): SteadyFigures {
  const { from, to, periodMs } = opts;
  const inWindow = records.filter((r) => r.scheduledFor >= from && r.scheduledFor < to);
  const byJob = new Map<string, ExecutionRecord[]>();
  for (const r of records) {
    const list = byJob.get(r.job) ?? [];
    list.push(r);
    byJob.set(r.job, list);
  }
  let missed = 0;
  let duplicated = 0;
  for (const job of opts.jobs) {
    const all = byJob.get(job) ?? [];
    // The grid's phase is taken from the job's own occurrences (BullMQ's
    // `every` and CronQ's R/<start>/PT1S both keep a fixed phase).
    const phase = all.length ? ((all[0]!.scheduledFor % periodMs) + periodMs) % periodMs : 0;
    const seen = new Map<number, number>();
    for (const r of all) {
      if (r.scheduledFor < from || r.scheduledFor >= to) continue;
      seen.set(r.scheduledFor, (seen.get(r.scheduledFor) ?? 0) + 1);
    }
    const first = Math.ceil((from - phase) / periodMs) * periodMs + phase;
    for (let t = first; t < to; t += periodMs) if (!seen.has(t)) missed++;
    for (const n of seen.values()) duplicated += n - 1;
  }
  const finished = records.filter((r) => r.finishedAt >= from && r.finishedAt < to).length;
  const lags = inWindow.map((r) => r.startedAt - r.scheduledFor);
  const windowSeconds = (to - from) / 1000;
  return {
    windowSeconds,
    jobs: opts.jobs.length,
    executions: inWindow.length,
    runsPerSecond: finished / windowSeconds,
    lagP50Ms: percentile(lags, 50),
    lagP99Ms: percentile(lags, 99),
    lagMaxMs: lags.length ? Math.max(...lags) : NaN,
    missed,
    duplicated,
  };
}
