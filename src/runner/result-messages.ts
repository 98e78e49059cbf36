import type { OutputTail } from './output-tail';
import type { KillOrder } from '../core/control';
import type { FinishStatus, JobToRun, ResultMessage } from '../core/messages';
import { durationWords } from '../core/policies';
import type { ProcessOutcome } from './job-process';

/**
 * The result messages a runner sends (SPEC.md's fields plus status, output
 * tail and reason), and their message ids: stable per run and type, so the
 * same result published twice (after a confirm that never came) is
 * recognisably the same message.
 */
export function resultMessageId(runId: string, type: ResultMessage['type'], seq?: number): string {
  return seq === undefined ? `${runId}.${type}` : `${runId}.${type}.${seq}`;
}

interface Common {
  job: JobToRun;
  host: string;
  startTime: Date;
}

function base(c: Common, type: ResultMessage['type']): ResultMessage {
  return {
    job_id: c.job.jobId,
    run_id: c.job.runId,
    type,
    start_time: c.startTime.toISOString(),
    'x-send-datetime': new Date().toISOString(),
    'x-host': c.host,
    name: c.job.name,
  };
}

export function startingResult(c: Common): ResultMessage {
  return base(c, 'starting');
}

export function heartbeatResult(c: Common): ResultMessage {
  return base(c, 'heartbeat');
}

/** `failed`: the command could not be started at all. */
export function couldNotStartResult(c: Common, err: Error | undefined): ResultMessage {
  return {
    ...base(c, 'failed'),
    return_code: null,
    run_time: 0,
    status: 'failed',
    output: '',
    reason: `could not start: ${err?.message ?? 'unknown error'}`,
  };
}

/**
 * `finished` with status `missed`: the run was not started because its
 * starting deadline had passed. It never ran, so it has no start time,
 * return code, run time or output.
 */
export function missedResult(job: JobToRun, host: string, lateMs: number): ResultMessage {
  return {
    job_id: job.jobId,
    run_id: job.runId,
    type: 'finished',
    'x-send-datetime': new Date().toISOString(),
    'x-host': host,
    name: job.name,
    return_code: null,
    status: 'missed',
    reason: `not started within its starting deadline (${durationWords(lateMs)} late)`,
  };
}

/** Why a run was killed, in words: the order's reason, or who asked. */
export function killReason(order: KillOrder): string {
  return order.reason ?? `killed by ${order.requestedBy}`;
}

/**
 * `finished` with status `killed` for a run a kill order kept from
 * starting: it never ran, so it has no start time, return code or output.
 */
export function killedBeforeStartResult(
  job: JobToRun,
  host: string,
  order: KillOrder,
): ResultMessage {
  return {
    job_id: job.jobId,
    run_id: job.runId,
    type: 'finished',
    'x-send-datetime': new Date().toISOString(),
    'x-host': host,
    name: job.name,
    return_code: null,
    status: 'killed',
    reason: `${killReason(order)} before it started`,
  };
}

/** `finished`: the shell ran and ended, by itself, by a timeout, a kill order or the runner's shutdown. */
export function finishedResult(
  c: Common,
  o: ProcessOutcome,
  tail: Pick<OutputTail, 'text' | 'stderrLines' | 'total'>,
  timeoutSeconds: number | null,
  kill?: KillOrder,
): ResultMessage & { status: FinishStatus } {
  const output = tail.text();
  const stderr = tail.stderrLines();
  let status: FinishStatus = o.returnCode === 0 ? 'succeeded' : 'failed';
  let reason: string | undefined;
  if (o.terminatedBy === 'kill' && kill) {
    status = 'killed';
    reason = `${killReason(kill)}; process group terminated${o.signal ? ` (${o.signal})` : ''}`;
  } else if (o.terminatedBy === 'timeout') {
    status = 'timed_out';
    reason = `timed out after ${timeoutSeconds} s; process group terminated${o.signal ? ` (${o.signal})` : ''}`;
  } else if (o.terminatedBy === 'shutdown') {
    status = 'failed';
    reason = `runner shutdown${o.signal ? ` (${o.signal})` : ''}`;
  } else if (o.signal) {
    reason = `killed by ${o.signal}`;
  } else if (status === 'failed' && stderr.lastLine !== null) {
    // An ordinary non-zero exit: what the command said last on stderr is why, as a person reads it.
    reason = stderr.lastLine;
  }
  const msg: ResultMessage & { status: FinishStatus } = {
    ...base(c, 'finished'),
    return_code: o.returnCode,
    run_time: Math.max(0, o.exitedAt - o.spawnedAt) / 1000,
    status,
    output,
    output_total: tail.total,
  };
  if (stderr.ranges !== '') msg.stderr_lines = stderr.ranges;
  if (reason !== undefined) msg.reason = reason;
  return msg;
}
