/**
 * Fixed-length ISO 8601 durations for policies (starting_deadline, retry
 * delays): weeks, days, hours, minutes and seconds. A day is 24 hours here;
 * years and months have no fixed length and are refused, so "PT30S" means
 * the same thing to every part of CronQ.
 */

/** The longest policy duration: ten years, far inside what a timer chain takes. */
export const MAX_POLICY_DURATION_MS = 10 * 365 * 24 * 3600 * 1000;

const PATTERN =
  /^P(?:(\d{1,6})W)?(?:(\d{1,6})D)?(?:T(?:(\d{1,6})H)?(?:(\d{1,6})M)?(?:(\d{1,9}(?:[.,]\d{1,3})?)S)?)?$/;

/** Longest duration text taken; "P9999DT23H59M59.999S" is 20. */
const MAX_DURATION_TEXT = 40;

export class DurationError extends Error {
  override name = 'DurationError';
}

/** Milliseconds of `text` (e.g. "PT30S", "P1DT2H"), or a DurationError naming `field`. */
export function parsePolicyDuration(text: unknown, field: string): number {
  if (typeof text !== 'string')
    throw new DurationError(`${field} must be an ISO 8601 duration such as "PT30S"`);
  // Written as is in jobs.policies: so bounded, and ASCII only (upper-casing
  // "ſ" would otherwise turn it into an "S" that the pattern accepts).
  if (text.length > MAX_DURATION_TEXT || !/^[\x20-\x7e]*$/.test(text))
    throw new DurationError(
      `${field} must be an ISO 8601 duration such as "PT30S", at most ${MAX_DURATION_TEXT} plain characters`,
    );
  const t = text.trim().toUpperCase();
  if (t.startsWith('P') && /[YM]/.test(t.split('T')[0]!))
    throw new DurationError(
      `${field}: years and months have no fixed length; use weeks, days, hours, minutes or seconds (got "${clip(text)}")`,
    );
  const m = PATTERN.exec(t);
  if (!m || t === 'P' || t.endsWith('T'))
    throw new DurationError(
      `${field} must be an ISO 8601 duration such as "PT30S", "PT15M" or "P1D" (got "${clip(text)}")`,
    );
  const [, w, d, h, min, s] = m;
  const ms =
    Number(w ?? 0) * 7 * 86_400_000 +
    Number(d ?? 0) * 86_400_000 +
    Number(h ?? 0) * 3_600_000 +
    Number(min ?? 0) * 60_000 +
    Math.round(Number((s ?? '0').replace(',', '.')) * 1000);
  if (ms > MAX_POLICY_DURATION_MS)
    throw new DurationError(`${field} is longer than ten years (got "${clip(text)}")`);
  return ms;
}

/** A duration in words: "30 s", "15 min", "1 h 30 min", "2 d". */
export function durationWords(ms: number): string {
  if (ms < 1000) return `${ms} ms`;
  const parts: string[] = [];
  let rest = Math.round(ms / 1000);
  for (const [unit, size] of [
    ['d', 86_400],
    ['h', 3_600],
    ['min', 60],
    ['s', 1],
  ] as const) {
    const n = Math.floor(rest / size);
    if (n > 0) parts.push(`${n} ${unit}`);
    rest -= n * size;
  }
  return parts.slice(0, 2).join(' ');
}

function clip(text: string): string {
  return text.length > 40 ? `${text.slice(0, 40)}…` : text;
}
