import type { RetryOn, RetryPolicy } from './policies';

/**
 * Whether a run that ended with `status` on attempt `attempt` (1 = the
 * first run) gets another attempt.
 */
export function shouldRetry(policy: RetryPolicy | null, status: string, attempt: number): boolean {
  if (!policy || !policy.on.includes(status as RetryOn)) return false;
  return attempt >= 1 && attempt <= policy.max;
}

/** The longest wait before retry number `retry` (1 = the first retry): delay × backoff^(retry-1), capped. */
export function retryDelayCeilingMs(policy: RetryPolicy, retry: number): number {
  const n = Math.max(1, Math.floor(retry));
  const grown = policy.delayMs * policy.backoff ** Math.min(n - 1, 1000);
  return Math.min(policy.maxDelayMs, Number.isFinite(grown) ? grown : policy.maxDelayMs);
}

/**
 * The wait before retry number `retry`: its ceiling less up to 20 % jitter,
 * so jobs that failed together (a database down for all of them) do not
 * all retry in the same second. Always within [0.8 × ceiling, ceiling].
 */
export function retryDelayMs(
  policy: RetryPolicy,
  retry: number,
  random: () => number = Math.random,
): number {
  const ceiling = retryDelayCeilingMs(policy, retry);
  const r = Math.min(1, Math.max(0, random()));
  return Math.round(ceiling * (0.8 + 0.2 * r));
}
