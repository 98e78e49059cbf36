/**
 * Timers that are safe for any delay. Node stores a timer's delay as a
 * signed 32-bit count of milliseconds: anything above 2^31-1 ms (about
 * 24.8 days) silently becomes 1 ms, so a 30-day job timeout fired at once.
 * Every timer whose delay comes from data (a message, a setting) goes
 * through here.
 *
 * The rule for odd delays, the same in both helpers:
 * - NaN, negative numbers and -Infinity mean "now" (0), as Node treats them;
 * - fractions round up, so a timer never fires before the time asked for;
 * - +Infinity means "never" for setLongTimeout, and the longest single
 *   timer for clampDelay.
 */

/** The longest delay one Node timer keeps: 2^31-1 ms. */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/** A delay one setTimeout can take as given: whole milliseconds from 0 to MAX_TIMER_MS. */
export function clampDelay(ms: number): number {
  if (Number.isNaN(ms) || ms <= 0) return 0;
  if (ms >= MAX_TIMER_MS) return MAX_TIMER_MS;
  return Math.ceil(ms);
}

export interface LongTimeout {
  /** Stop it; calling it again, or after it fired, does nothing. */
  cancel(): void;
  /** True until it fired or was cancelled. */
  readonly pending: boolean;
}

export interface LongTimeoutOptions {
  /** Do not keep the process alive for this timer (as `timer.unref()`). */
  unref?: boolean;
  /** A monotonic clock in ms; tests pass a mocked Date.now. */
  clock?: () => number;
}

/**
 * Call `fn` once after `ms` milliseconds, for any `ms` (rule above).
 * Delays longer than one Node timer are chained: each link waits at most
 * MAX_TIMER_MS, then measures what is left against the deadline on a
 * monotonic clock (performance.now), so the links' own lateness does not
 * add up, a wall-clock jump does not move the deadline, and a link that
 * fires a little early just waits out the rest.
 */
export function setLongTimeout(
  fn: () => void,
  ms: number,
  opts: LongTimeoutOptions = {},
): LongTimeout {
  const clock = opts.clock ?? (() => performance.now());
  let timer: NodeJS.Timeout | undefined;
  let pending = true;
  const delay = ms === Infinity ? Infinity : Number.isNaN(ms) || ms <= 0 ? 0 : Math.ceil(ms);
  const deadline = clock() + delay;
  const arm = (step: number): void => {
    timer = setTimeout(() => {
      timer = undefined;
      if (!pending) return;
      const left = Math.ceil(deadline - clock());
      if (left > 0) return arm(Math.min(left, MAX_TIMER_MS));
      pending = false;
      fn();
    }, step);
    if (opts.unref) timer.unref();
  };
  if (delay !== Infinity) arm(Math.min(delay, MAX_TIMER_MS));
  return {
    cancel() {
      pending = false;
      if (timer !== undefined) clearTimeout(timer);
      timer = undefined;
    },
    get pending() {
      return pending;
    },
  };
}
