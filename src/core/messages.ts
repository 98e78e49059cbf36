import { isLineRanges } from './output-lines';
import { errorMessage } from './async';
import { MessageFormatError } from './errors';
import {
  boundedInt,
  boundedSeconds,
  COMMAND_MAX_BYTES,
  cutChars,
  DEFAULT_OUTPUT_TAIL_BYTES,
  EARLIEST_TIME_MS,
  HOST_MAX_CHARS,
  INT32_MAX,
  INT32_MIN,
  isSaneTime,
  MAX_SECONDS,
  NAME_MAX_CHARS,
  cutCodePoints,
  REASON_MAX_CHARS,
  tailBytes,
} from './message-fields';

/**
 * The wire formats of SPEC.md. Job messages carry both spellings (the
 * README's `id`/`command` and the original runners' `job_id`/`cmd`) so old
 * and new runners can share a queue; parsers accept either.
 */

export interface JobMessage {
  run_id: string;
  job_id: number;
  id: number;
  name: string;
  cmd: string;
  command: string;
  /** Seconds; null = no limit. */
  timeout: number | null;
  /** ISO 8601 UTC of the occurrence this run is for. */
  scheduled_for: string;
  trigger: JobTrigger;
  /**
   * ISO 8601 UTC: the latest a runner may start this run (scheduled_for +
   * the job's starting_deadline); absent when the job has none.
   */
  start_by?: string;
  /** With a retry: which attempt this run is (2 = the first retry). */
  attempt?: number;
}

/** Why a run exists: its schedule, a person's *Run now*, or a retry of a failed run. */
export type JobTrigger = 'schedule' | 'manual' | 'retry';

/** What a runner needs from a job message, whichever spelling it came in. */
export interface JobToRun {
  runId: string;
  jobId: number;
  name: string;
  command: string;
  timeoutSeconds: number | null;
  scheduledFor: string | null;
  /**
   * Epoch ms before which a scheduled run must not start: its occurrence,
   * when the injector published it ahead (CRONQ_INJECTOR_LEAD_MS). Null for
   * manual runs and for messages without a readable scheduled_for.
   */
  notBefore: number | null;
  /**
   * Epoch ms after which the run must not start (the message's start_by:
   * its occurrence plus the job's starting_deadline); null when the job
   * has none.
   */
  startBy?: number | null;
}

/**
 * The furthest ahead of its occurrence the injector may publish a run
 * (CRONQ_INJECTOR_LEAD_MS), and so the longest a runner holds one: a
 * runner whose clock runs behind the injector's never waits longer.
 */
export const MAX_LEAD_MS = 5000;

/**
 * The longest job timeout a runner enforces (2^31-1 s, about 68 years, the
 * most the jobs table's column holds); a longer one in a message means no limit.
 */
export const MAX_TIMEOUT_SECONDS = MAX_SECONDS;

export type ResultType = 'starting' | 'finished' | 'failed' | 'heartbeat';
export const RESULT_TYPES: readonly ResultType[] = ['starting', 'finished', 'failed', 'heartbeat'];

/** How a finished run ended, beyond its return code. */
export type FinishStatus = 'succeeded' | 'failed' | 'timed_out' | 'killed';
/** What a `finished` result may say: how the run ended, or `missed` (never started: its starting deadline passed). */
export type ResultStatus = FinishStatus | 'missed';

export interface ResultMessage {
  job_id: number;
  run_id: string;
  type: ResultType;
  return_code?: number | null;
  /** Seconds, with `finished` and `failed`. */
  run_time?: number;
  /** ISO 8601 UTC. */
  start_time?: string;
  'x-send-datetime': string;
  'x-host': string;
  /** With `finished`: succeeded, failed, timed_out, killed (on request), or missed (not started; no host, no return code). */
  status?: ResultStatus;
  /** With `finished`/`failed`: the last bytes of output, decoded as UTF-8 with replacement. */
  output?: string;
  /** Why a run failed or was killed, in words. */
  reason?: string;
  name?: string;
  /** With `output`: bytes the run wrote in all, of which `output` is the tail. */
  output_total?: number;
  /** With `output`: its lines that came from stderr, from the end (core/output-lines.ts). */
  stderr_lines?: string;
}

export const RUN_ID_RE = /^[0-9a-f]{32}$/;

export interface JobMessageInput {
  runId: string;
  jobId: number;
  name: string;
  command: string;
  timeoutSeconds: number | null;
  scheduledFor: Date;
  trigger: JobTrigger;
  /** scheduled_for + the job's starting_deadline; null or absent = none. */
  startBy?: Date | null;
  attempt?: number;
}

export function buildJobMessage(j: JobMessageInput): JobMessage {
  const m: JobMessage = {
    run_id: j.runId,
    job_id: j.jobId,
    id: j.jobId,
    name: j.name,
    cmd: j.command,
    command: j.command,
    timeout: j.timeoutSeconds,
    scheduled_for: j.scheduledFor.toISOString(),
    trigger: j.trigger,
  };
  // Only when set, so a job without policies publishes exactly the original message.
  if (j.startBy) m.start_by = j.startBy.toISOString();
  if (j.attempt !== undefined && j.attempt > 1) m.attempt = j.attempt;
  return m;
}

function parseJson(body: Buffer | string, what: string): Record<string, unknown> {
  let v: unknown;
  try {
    v = JSON.parse(typeof body === 'string' ? body : body.toString('utf8'));
  } catch (err) {
    throw new MessageFormatError(`${what} is not JSON: ${errorMessage(err)}`);
  }
  if (v === null || typeof v !== 'object' || Array.isArray(v))
    throw new MessageFormatError(`${what} is not a JSON object`);
  return v as Record<string, unknown>;
}

/** jobs.id: a positive INT. Strings of digits are accepted, as old runners send them. */
function toJobId(v: unknown): number | undefined {
  return boundedInt(v, 1, INT32_MAX);
}

function normaliseRunId(v: unknown): string | undefined {
  // 36 = a UUID with dashes; anything longer cannot normalise to 32 hex digits.
  if (typeof v !== 'string' || v.length > 36) return undefined;
  const s = v.replace(/-/g, '').toLowerCase();
  return RUN_ID_RE.test(s) ? s : undefined;
}

/** Limits of a message parser that depend on the receiver's settings. */
export interface ParseLimits {
  /** Longest `output` kept, in UTF-8 bytes (its tail is kept); CRONQ_OUTPUT_TAIL_BYTES. */
  maxOutputBytes?: number;
  /** The receiver's clock (epoch ms): times more than a day ahead of it are rejected. */
  now?: number;
}

/** A time field: absent (undefined or null) gives undefined, anything but a sane time is rejected. */
function timeField(m: Record<string, unknown>, field: string, now: number, what: string) {
  const v = m[field];
  if (v === undefined || v === null) return undefined;
  const d = parseWireTime(v);
  if (d === undefined || !isSaneTime(d, now)) {
    throw new MessageFormatError(
      `${what} ${field} must be a time between 2000-01-01 and a day from now (ISO 8601 UTC)`,
    );
  }
  return d;
}

/** Job message timeout: seconds, 0 or null = none. */
function parseTimeout(v: unknown): number | null {
  if (v === undefined || v === null) return null;
  if (typeof v !== 'number' || Number.isNaN(v) || v < 0)
    throw new MessageFormatError('job message timeout must be a number of seconds (0 or more)');
  // 0, and anything past MAX_TIMEOUT_SECONDS (1e300, or 1e400 which JSON reads as Infinity), mean no limit.
  return v === 0 || v > MAX_TIMEOUT_SECONDS ? null : v;
}

/**
 * Parse a job message in either spelling. Returns only bounded values;
 * anything else is a MessageFormatError naming the field.
 */
export function parseJobMessage(body: Buffer | string, limits: ParseLimits = {}): JobToRun {
  const now = limits.now ?? Date.now();
  const m = parseJson(body, 'job message');
  const command =
    typeof m.cmd === 'string' ? m.cmd : typeof m.command === 'string' ? m.command : undefined;
  if (command === undefined || command.trim() === '')
    throw new MessageFormatError('job message has no command (cmd or command)');
  // Never run a cut command: one longer than any job can hold is refused whole.
  if (command.length > COMMAND_MAX_BYTES || Buffer.byteLength(command) > COMMAND_MAX_BYTES)
    throw new MessageFormatError(`job message command is longer than ${COMMAND_MAX_BYTES} bytes`);
  const jobId = toJobId(m.job_id ?? m.id);
  if (jobId === undefined)
    throw new MessageFormatError(
      `job message has no job id (job_id or id, a whole number from 1 to ${INT32_MAX})`,
    );
  const runId = normaliseRunId(m.run_id);
  if (runId === undefined)
    throw new MessageFormatError('job message has no run id (run_id, 32 hex characters)');
  const name =
    typeof m.name === 'string' && m.name !== ''
      ? cutCodePoints(m.name, NAME_MAX_CHARS)
      : `job-${jobId}`;
  const timeoutSeconds = parseTimeout(m.timeout);
  // An unreadable occurrence only loses the hold-until-due, never the run.
  const at = typeof m.scheduled_for === 'string' ? parseWireTime(m.scheduled_for) : undefined;
  const when = at !== undefined && isSaneTime(at, now) ? at : undefined;
  const scheduledFor = when ? when.toISOString() : null;
  const notBefore = when && m.trigger === 'schedule' ? when.getTime() : null;
  const startBy = parseStartBy(m.start_by);
  return { runId, jobId, name, command, timeoutSeconds, scheduledFor, notBefore, startBy };
}

/**
 * start_by: absent (or null) = no deadline. Anything else must be a
 * readable time after 2000-01-01 (no upper bound: the occurrence plus a
 * deadline of up to ten years): a deadline the runner cannot read cannot
 * be kept, so the message is refused rather than run however late.
 */
function parseStartBy(v: unknown): number | null {
  if (v === undefined || v === null) return null;
  const d = typeof v === 'string' ? parseWireTime(v) : undefined;
  if (d === undefined || d.getTime() < EARLIEST_TIME_MS)
    throw new MessageFormatError(
      'job message start_by must be a time after 2000-01-01 (ISO 8601 UTC)',
    );
  return d.getTime();
}

/**
 * Read a time the way the original and the new runners send it: ISO 8601
 * (with or without Z; no zone = UTC), Python's `str(datetime)`
 * ("2024-01-01 12:00:00.123456"), or Unix seconds. Undefined for anything
 * else, including numbers too large for a Date.
 */
export function parseWireTime(v: unknown): Date | undefined {
  let d: Date;
  if (typeof v === 'number') d = new Date(v * 1000);
  else if (typeof v !== 'string' || v.length > 64) return undefined;
  else {
    const s = v.trim();
    if (/^\d+(\.\d+)?$/.test(s)) d = new Date(Number(s) * 1000);
    else {
      const m = /^(\d{4}-\d{2}-\d{2})[T ](\d{2}:\d{2}:\d{2})(\.\d+)?(Z|[+-]\d{2}:?\d{2})?$/.exec(s);
      if (!m) return undefined;
      const frac = m[3] ? m[3].slice(0, 4).padEnd(4, '0') : '';
      d = new Date(`${m[1]}T${m[2]}${frac}${m[4] ?? 'Z'}`);
    }
  }
  return Number.isNaN(d.getTime()) ? undefined : d;
}

/**
 * Parse and validate a result message. Every field comes back bounded (see
 * src/core/message-fields.ts): ids and numbers in their columns' ranges,
 * times sane, free text cut to its column, output to its tail. Anything
 * else is a MessageFormatError naming the field; nothing else is thrown.
 */
export function parseResultMessage(body: Buffer | string, limits: ParseLimits = {}): ResultMessage {
  const now = limits.now ?? Date.now();
  const maxOutput = limits.maxOutputBytes ?? DEFAULT_OUTPUT_TAIL_BYTES;
  const m = parseJson(body, 'result message');
  const jobId = toJobId(m.job_id);
  if (jobId === undefined)
    throw new MessageFormatError(
      `result message has no job_id (a whole number from 1 to ${INT32_MAX})`,
    );
  const runId = normaliseRunId(m.run_id);
  if (runId === undefined)
    throw new MessageFormatError('result message has no run_id (32 hex characters)');
  const type = m.type;
  if (typeof type !== 'string' || !(RESULT_TYPES as readonly string[]).includes(type)) {
    throw new MessageFormatError(`result message type must be one of ${RESULT_TYPES.join(', ')}`);
  }
  const sent = timeField(m, 'x-send-datetime', now, 'result message');
  if (sent === undefined)
    throw new MessageFormatError('result message has no x-send-datetime (ISO 8601 UTC)');
  let returnCode: number | null | undefined;
  if (m.return_code === null) returnCode = null;
  else if (m.return_code !== undefined) {
    if (typeof m.return_code !== 'number') returnCode = undefined;
    else returnCode = boundedInt(m.return_code, INT32_MIN, INT32_MAX);
    if (returnCode === undefined)
      throw new MessageFormatError(
        `result message return_code must be an integer from ${INT32_MIN} to ${INT32_MAX}`,
      );
  }
  let runTime: number | undefined;
  if (m.run_time !== undefined && m.run_time !== null) {
    runTime = boundedSeconds(m.run_time);
    if (runTime === undefined)
      throw new MessageFormatError(
        `result message run_time must be a number of seconds (0 to ${MAX_SECONDS})`,
      );
  }
  const start = timeField(m, 'start_time', now, 'result message');
  const status = m.status;
  if (
    status !== undefined &&
    status !== 'succeeded' &&
    status !== 'failed' &&
    status !== 'timed_out' &&
    status !== 'missed' &&
    status !== 'killed'
  ) {
    throw new MessageFormatError(
      'result message status must be succeeded, failed, timed_out, missed or killed',
    );
  }
  if (status === 'killed' && type !== 'finished')
    throw new MessageFormatError('result message status killed comes only with type finished');
  // A run that never started can only say so in its one final result.
  if (status === 'missed' && type !== 'finished')
    throw new MessageFormatError('result message status missed comes only with type finished');
  const out: ResultMessage = {
    job_id: jobId,
    run_id: runId,
    type: type as ResultType,
    'x-send-datetime': sent.toISOString(),
    'x-host': typeof m['x-host'] === 'string' ? cutChars(m['x-host'], HOST_MAX_CHARS) : '',
  };
  if (returnCode !== undefined) out.return_code = returnCode;
  if (runTime !== undefined) out.run_time = runTime;
  if (start !== undefined) out.start_time = start.toISOString();
  if (status !== undefined) out.status = status;
  if (typeof m.output === 'string') out.output = tailBytes(m.output, maxOutput);
  if (typeof m.reason === 'string') out.reason = cutChars(m.reason, REASON_MAX_CHARS);
  // Optional extras about the output: dropped when not well formed, never a reason to refuse.
  if (Number.isSafeInteger(m.output_total) && (m.output_total as number) >= 0)
    out.output_total = m.output_total as number;
  if (isLineRanges(m.stderr_lines)) out.stderr_lines = m.stderr_lines;
  if (typeof m.name === 'string' && m.name !== '') out.name = cutCodePoints(m.name, NAME_MAX_CHARS);
  return out;
}

/** Status of a run after a `finished` result, by SPEC.md's rule when the sender gave none. */
export function finishStatus(r: ResultMessage): ResultStatus {
  if (r.status) return r.status;
  return r.return_code === 0 ? 'succeeded' : 'failed';
}
