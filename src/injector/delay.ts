/**
 * Every wait of the injector goes through here. A delay computed from data
 * (the earliest next_run, a clock difference) can be NaN or huge: Node's
 * setTimeout fires at once for NaN and for anything past 2^31-1 ms, which
 * would turn an idle wait into a busy loop. Unlike core/timers' clampDelay
 * (NaN = now), an unreadable delay here means the longest wait: an injector
 * that cannot tell when the next job is due polls at its slowest, never in a
 * tight loop.
 */
export function boundedDelayMs(ms: number, maxMs: number): number {
  if (Number.isNaN(ms)) return maxMs;
  return Math.min(maxMs, Math.max(0, ms));
}
