/**
 * The small async helpers every daemon uses: sleep, backoff with jitter,
 * a timeout race, and turning a thrown value into an Error.
 */

export interface Backoff {
  /** Delay before attempt `attempt` (0-based), with jitter. */
  delay(attempt: number): number;
}

/**
 * Exponential backoff with jitter and a cap: attempt n waits between half
 * and all of min(cap, base * 2^n), so many clients that failed together do
 * not retry together.
 */
export function exponentialBackoff(
  baseMs = 250,
  capMs = 15_000,
  random: () => number = Math.random,
): Backoff {
  return {
    delay(attempt) {
      const ceiling = Math.min(capMs, baseMs * 2 ** Math.min(attempt, 20));
      return Math.round(ceiling / 2 + (random() * ceiling) / 2);
    },
  };
}

/** Resolve after `ms`, or at once when `signal` aborts (never rejects). */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}

/**
 * Wait for `work` for at most `ms`: resolves `{ done: true, value }` when it
 * settles in time, `{ done: false }` when the time is up first (work goes
 * on; it is not cancelled). A rejection of `work` in time is passed on.
 */
export async function within<T>(
  work: Promise<T>,
  ms: number,
): Promise<{ done: true; value: T } | { done: false }> {
  let timer: NodeJS.Timeout | undefined;
  const timeUp = new Promise<{ done: false }>((resolve) => {
    timer = setTimeout(() => resolve({ done: false }), Math.max(0, ms));
    timer.unref?.();
  });
  try {
    return await Promise.race([work.then((value) => ({ done: true as const, value })), timeUp]);
  } finally {
    clearTimeout(timer);
  }
}

/** Whatever was thrown, as an Error (a thrown string or object keeps its text). */
export function asError(thrown: unknown): Error {
  if (thrown instanceof Error) return thrown;
  if (typeof thrown === 'string') return new Error(thrown);
  try {
    return new Error(JSON.stringify(thrown) ?? String(thrown));
  } catch {
    return new Error(String(thrown));
  }
}

/** The message of whatever was thrown. */
export function errorMessage(thrown: unknown): string {
  return asError(thrown).message;
}
