import { MessageFormatError } from './errors';

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
  trigger: 'schedule' | 'manual';
}

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
export const MAX_TIMEOUT_SECONDS = 2 ** 31 - 1;

export type ResultType = 'starting' | 'finished' | 'failed' | 'heartbeat';
export const RESULT_TYPES: readonly ResultType[] = ['starting', 'finished', 'failed', 'heartbeat'];

/** How a finished run ended, beyond its return code. */
export type FinishStatus = 'succeeded' | 'failed' | 'timed_out';

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
  /** With `finished`: succeeded, failed, or timed_out. */
  status?: FinishStatus;
  /** With `finished`/`failed`: the last bytes of output, decoded as UTF-8 with replacement. */
  output?: string;
  /** Why a run failed or was killed, in words. */
  reason?: string;
  name?: string;
}

export const RUN_ID_RE = /^[0-9a-f]{32}$/;

export interface JobMessageInput {
  runId: string;
  jobId: number;
  name: string;
  command: string;
  timeoutSeconds: number | null;
  scheduledFor: Date;
  trigger: 'schedule' | 'manual';
}

export function buildJobMessage(j: JobMessageInput): JobMessage {
  return {
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
}

function parseJson(body: Buffer | string, what: string): Record<string, unknown> {
  let v: unknown;
  try {
    v = JSON.parse(typeof body === 'string' ? body : body.toString('utf8'));
  } catch (err) {
    throw new MessageFormatError(`${what} is not JSON: ${(err as Error).message}`);
  }
  if (v === null || typeof v !== 'object' || Array.isArray(v))
    throw new MessageFormatError(`${what} is not a JSON object`);
  return v as Record<string, unknown>;
}

function toJobId(v: unknown): number | undefined {
  if (typeof v === 'number' && Number.isSafeInteger(v) && v >= 0) return v;
  if (typeof v === 'string' && /^\d{1,15}$/.test(v)) return Number(v);
  return undefined;
}

function normaliseRunId(v: unknown): string | undefined {
  if (typeof v !== 'string') return undefined;
  const s = v.replace(/-/g, '').toLowerCase();
  return RUN_ID_RE.test(s) ? s : undefined;
}

/** Parse a job message in either spelling; MessageFormatError names what is missing. */
export function parseJobMessage(body: Buffer | string): JobToRun {
  const m = parseJson(body, 'job message');
  const command =
    typeof m.cmd === 'string' ? m.cmd : typeof m.command === 'string' ? m.command : undefined;
  if (command === undefined || command.trim() === '')
    throw new MessageFormatError('job message has no command (cmd or command)');
  const jobId = toJobId(m.job_id ?? m.id);
  if (jobId === undefined)
    throw new MessageFormatError('job message has no job id (job_id or id, a whole number)');
  const runId = normaliseRunId(m.run_id);
  if (runId === undefined)
    throw new MessageFormatError('job message has no run id (run_id, 32 hex characters)');
  const name = typeof m.name === 'string' && m.name !== '' ? m.name : `job-${jobId}`;
  let timeoutSeconds: number | null = null;
  if (m.timeout !== undefined && m.timeout !== null) {
    if (typeof m.timeout !== 'number' || Number.isNaN(m.timeout) || m.timeout < 0) {
      throw new MessageFormatError('job message timeout must be a number of seconds');
    }
    // 0 and anything past MAX_TIMEOUT_SECONDS (1e300, or 1e400 which JSON reads as Infinity) = no limit.
    timeoutSeconds = m.timeout === 0 || m.timeout > MAX_TIMEOUT_SECONDS ? null : m.timeout;
  }
  const scheduledFor = typeof m.scheduled_for === 'string' ? m.scheduled_for : null;
  let notBefore: number | null = null;
  if (scheduledFor !== null && m.trigger === 'schedule') {
    const t = Date.parse(scheduledFor);
    if (Number.isFinite(t)) notBefore = t;
  }
  return { runId, jobId, name, command, timeoutSeconds, scheduledFor, notBefore };
}

/**
 * Read a time the way the original and the new runners send it: ISO 8601
 * (with or without Z; no zone = UTC), Python's `str(datetime)`
 * ("2024-01-01 12:00:00.123456"), or Unix seconds.
 */
export function parseWireTime(v: unknown): Date | undefined {
  if (typeof v === 'number' && Number.isFinite(v)) return new Date(v * 1000);
  if (typeof v !== 'string' || v.trim() === '') return undefined;
  const s = v.trim();
  if (/^\d+(\.\d+)?$/.test(s)) return new Date(Number(s) * 1000);
  const m = /^(\d{4}-\d{2}-\d{2})[T ](\d{2}:\d{2}:\d{2})(\.\d+)?(Z|[+-]\d{2}:?\d{2})?$/.exec(s);
  if (!m) return undefined;
  const frac = m[3] ? m[3].slice(0, 4).padEnd(4, '0') : '';
  const zone = m[4] ?? 'Z';
  const d = new Date(`${m[1]}T${m[2]}${frac}${zone}`);
  return Number.isNaN(d.getTime()) ? undefined : d;
}

/** Parse and validate a result message; MessageFormatError names what is wrong. */
export function parseResultMessage(body: Buffer | string): ResultMessage {
  const m = parseJson(body, 'result message');
  const jobId = toJobId(m.job_id);
  if (jobId === undefined)
    throw new MessageFormatError('result message has no job_id (a whole number)');
  const runId = normaliseRunId(m.run_id);
  if (runId === undefined)
    throw new MessageFormatError('result message has no run_id (32 hex characters)');
  const type = m.type;
  if (typeof type !== 'string' || !(RESULT_TYPES as readonly string[]).includes(type)) {
    throw new MessageFormatError(`result message type must be one of ${RESULT_TYPES.join(', ')}`);
  }
  const sent = parseWireTime(m['x-send-datetime']);
  if (sent === undefined)
    throw new MessageFormatError('result message has no x-send-datetime (ISO 8601 UTC)');
  let returnCode: number | null | undefined;
  if (m.return_code !== undefined && m.return_code !== null) {
    if (typeof m.return_code !== 'number' || !Number.isInteger(m.return_code))
      throw new MessageFormatError('result message return_code must be an integer');
    returnCode = m.return_code;
  } else if (m.return_code === null) returnCode = null;
  let runTime: number | undefined;
  if (m.run_time !== undefined && m.run_time !== null) {
    if (typeof m.run_time !== 'number' || !Number.isFinite(m.run_time) || m.run_time < 0)
      throw new MessageFormatError('result message run_time must be a number of seconds');
    runTime = m.run_time;
  }
  const start = parseWireTime(m.start_time);
  const status = m.status;
  if (
    status !== undefined &&
    status !== 'succeeded' &&
    status !== 'failed' &&
    status !== 'timed_out'
  ) {
    throw new MessageFormatError('result message status must be succeeded, failed or timed_out');
  }
  const out: ResultMessage = {
    job_id: jobId,
    run_id: runId,
    type: type as ResultType,
    'x-send-datetime': sent.toISOString(),
    'x-host': typeof m['x-host'] === 'string' ? m['x-host'].slice(0, 255) : '',
  };
  if (returnCode !== undefined) out.return_code = returnCode;
  if (runTime !== undefined) out.run_time = runTime;
  if (start !== undefined) out.start_time = start.toISOString();
  if (status !== undefined) out.status = status;
  if (typeof m.output === 'string') out.output = m.output;
  if (typeof m.reason === 'string') out.reason = m.reason.slice(0, 1024);
  if (typeof m.name === 'string') out.name = m.name;
  return out;
}

/** Status of a run after a `finished` result, by SPEC.md's rule when the sender gave none. */
export function finishStatus(r: ResultMessage): FinishStatus {
  if (r.status) return r.status;
  return r.return_code === 0 ? 'succeeded' : 'failed';
}

/** SPEC.md's job log name: runs of non-word characters become `-`, trimmed at both ends. */
export function logFileName(jobName: string): string {
  const base = jobName.replace(/\W+/g, '-').replace(/^-+|-+$/g, '');
  return `${base || 'job'}.log`;
}
