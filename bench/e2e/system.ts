/**
 * What every system in the end-to-end comparison (CronQ, the bare pipeline,
 * BullMQ, pg-boss) implements, so the driver runs the same workloads on each
 * in turn inside one repetition.
 */
import type { SteadyFigures } from '../lib/occurrences';

export interface BurstFigures {
  jobs: number;
  /** From the instant all jobs were due until the last result was stored (observed by polling every 50 ms). */
  completionMs: number;
  runsPerSecond: number;
  /** Results observed as stored when the deadline passed (equals jobs unless something was lost). */
  stored: number;
  /** Where the time went, ms after the due instant (systems that store the stages). */
  stages?: Record<string, number>;
  /** CPU ms per run from the due instant until all stored, by process group (see lib/cpu.ts). */
  cpuMsPerRun?: Record<string, number>;
}

export interface BenchSystem {
  readonly name: string;
  /** Isolated resources (own database / vhost / key prefix) and the two workers. */
  setup(): Promise<void>;
  /** `onDue` is called at the due instant (CPU accounting starts there). */
  burst(jobs: number, onDue?: () => void): Promise<BurstFigures>;
  /** The system's own processes by role, for CPU accounting. */
  pids(): Record<string, number[]>;
  steady(jobs: number, seconds: number): Promise<SteadyFigures>;
  /** Stop every process and drop what setup created; never throws. */
  teardown(): Promise<void>;
  /** Settings used, for the report. */
  settings(): Record<string, string | number | boolean>;
}

/** Poll `count()` until it reaches `target` or the deadline; returns when it got there. */
export async function pollUntil(
  count: () => Promise<number>,
  target: number,
  deadlineMs: number,
  intervalMs = 50,
): Promise<{ at: number; last: number }> {
  let last = 0;
  for (;;) {
    try {
      last = await count();
    } catch {
      // A failed look is not a result; try again at the next tick.
    }
    const now = Date.now();
    if (last >= target) return { at: now, last };
    if (now > deadlineMs) return { at: NaN, last };
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, Math.max(0, ms)));
}
