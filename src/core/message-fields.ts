/**
 * The bounds every field of a wire message is held to before anything else
 * sees it (src/core/messages.ts uses them). A value outside them is either
 * cut to size (free text: names, hosts, reasons, output) or rejected with a
 * MessageFormatError (numbers, ids, times: a wrong one cannot be repaired).
 * The limits are the columns' sizes, so a parsed message always fits the
 * database and a bad one never reaches it.
 */

/** INT columns (jobs.id, runs.return_code, events.return_code). */
export const INT32_MIN = -2147483648;
export const INT32_MAX = 2147483647;

/** runs.host, events.host, runs.job_name: CHAR/VARCHAR(255) characters. */
export const HOST_MAX_CHARS = 255;
export const NAME_MAX_CHARS = 255;
/** runs.reason: VARCHAR(1024). */
export const REASON_MAX_CHARS = 1024;
/**
 * Longest command a job message may carry. jobs.command is TEXT (64 KiB),
 * so the injector never publishes more; the bound is looser so a runner
 * still reports a too-long command the kernel refuses (E2BIG) as a failed
 * run, while a message of megabytes is refused outright.
 */
export const COMMAND_MAX_BYTES = 1024 * 1024;
/** The runner's CRONQ_OUTPUT_TAIL_BYTES default: what a result carries unless told otherwise. */
export const DEFAULT_OUTPUT_TAIL_BYTES = 65536;

/**
 * Times a message may carry. DATETIME holds years 1000-9999, but a time far
 * outside "now" is a broken clock or a forgery, and a future one would make
 * an unrecorded run the job's newest for years: a run's times must lie after
 * 2000-01-01 and at most a day ahead of the receiver's clock (a day covers
 * any clock skew worth tolerating).
 */
export const EARLIEST_TIME_MS = Date.UTC(2000, 0, 1);
export const MAX_AHEAD_MS = 24 * 3600 * 1000;
/** run_time and timeouts: ten years is longer than any run CronQ supervises. */
export const MAX_SECONDS = 10 * 366 * 86400;

/** At most `max` UTF-16 units, never ending inside a surrogate pair. */
export function cutChars(s: string, max: number): string {
  if (s.length <= max) return s;
  let end = max;
  const last = s.charCodeAt(end - 1);
  if (last >= 0xd800 && last <= 0xdbff) end -= 1;
  return s.slice(0, end);
}

/** At most `max` characters (code points, as a utf8mb4 CHAR/VARCHAR column counts them). */
export function cutCodePoints(s: string, max: number): string {
  if (s.length <= max) return s;
  let i = 0;
  for (let n = 0; n < max && i < s.length; n += 1) {
    const c = s.charCodeAt(i);
    const next = s.charCodeAt(i + 1);
    i += c >= 0xd800 && c <= 0xdbff && next >= 0xdc00 && next <= 0xdfff ? 2 : 1;
  }
  return s.slice(0, i);
}

/** The last `maxBytes` bytes of `s` as UTF-8, starting at a character boundary (the runner's tail rule). */
export function tailBytes(s: string, maxBytes: number): string {
  if (s.length <= maxBytes / 3 || Buffer.byteLength(s) <= maxBytes) return s;
  if (maxBytes <= 0) return '';
  const buf = Buffer.from(s, 'utf8');
  let start = buf.length - maxBytes;
  // Skip continuation bytes (10xxxxxx) of a character cut by the limit.
  while (start < buf.length && (buf[start]! & 0xc0) === 0x80) start += 1;
  return buf.toString('utf8', start);
}

/** A whole number in [min, max], given as a number or a string of digits; undefined otherwise. */
export function boundedInt(v: unknown, min: number, max: number): number | undefined {
  let n: number | undefined;
  if (typeof v === 'number') n = v;
  else if (typeof v === 'string' && /^-?\d{1,10}$/.test(v)) n = Number(v);
  if (n === undefined || !Number.isInteger(n) || n < min || n > max) return undefined;
  return n;
}

/** A number of seconds in [0, MAX_SECONDS]; undefined otherwise. */
export function boundedSeconds(v: unknown): number | undefined {
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0 || v > MAX_SECONDS) return undefined;
  return v;
}

/** A Date that is valid and inside [EARLIEST_TIME_MS, now + MAX_AHEAD_MS]. */
export function isSaneTime(d: Date, now: number): boolean {
  const t = d.getTime();
  return Number.isFinite(t) && t >= EARLIEST_TIME_MS && t <= now + MAX_AHEAD_MS;
}
