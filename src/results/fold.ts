import { finishStatus, type ResultMessage, type ResultStatus } from '../core/messages';

/**
 * Pure part of the results consumer: turn one batch of result messages into
 * the rows one transaction writes. Messages of the same run inside a batch
 * are folded into one change of its run row first, so a batch holding both
 * `finished` and `starting` of a run (in either order) writes one row
 * change; the SQL upsert applies the same rules against what is stored, so
 * the outcome does not depend on how messages were split into batches.
 */

export interface EventRow {
  job_id: number;
  datetime: Date;
  run_id: string;
  type: string;
  host: string;
  return_code: number | null;
  /** `${run_id}:${type}`: unique, so a redelivered message inserts nothing. */
  message_key: string;
}

export interface RunOutcome {
  /** `missed`: never started (its starting deadline passed); final like the others. */
  status: ResultStatus;
  finishedAt: Date;
  returnCode: number | null;
  runTime: number | null;
  output: string | null;
  reason: string | null;
  /** Bytes written in all, and the tail's stderr lines (core/output-lines.ts); null when not sent. */
  outputTotal: number | null;
  stderrLines: string | null;
}

/** What one batch says about one run. */
export interface RunChange {
  runId: string;
  jobId: number;
  jobName: string | null;
  /** Host of the latest message that named one. */
  host: string | null;
  /** Earliest start time any message of the batch gave. */
  startedAt: Date | null;
  /** Earliest send time of the batch's messages: stands in for scheduled_for/queued_at of a run nobody recorded. */
  firstSentAt: Date;
  /** The first final message of the batch (finished or failed), if any. */
  outcome: RunOutcome | null;
  /** The events row key (`run_id:type`) of the message that gave `outcome`. */
  outcomeKey: string | null;
}

export interface FoldedBatch {
  /** Sorted by run id, so concurrent consumers lock run rows in the same order. */
  runs: RunChange[];
  events: EventRow[];
  /** Sorted, distinct. */
  jobIds: number[];
}

function earliest(a: Date | null, b: Date | null): Date | null {
  if (a === null) return b;
  if (b === null) return a;
  return a.getTime() <= b.getTime() ? a : b;
}

function outcomeOf(m: ResultMessage, sent: Date): RunOutcome | null {
  if (m.type === 'finished') {
    return {
      status: finishStatus(m),
      finishedAt: sent,
      returnCode: m.return_code ?? null,
      runTime: m.run_time ?? null,
      output: m.output ?? null,
      reason: m.reason ?? null,
      outputTotal: m.output_total ?? null,
      stderrLines: m.stderr_lines ?? null,
    };
  }
  if (m.type === 'failed') {
    // The command could not be started: SPEC.md counts that as failed.
    return {
      status: 'failed',
      finishedAt: sent,
      returnCode: m.return_code ?? null,
      runTime: m.run_time ?? null,
      output: m.output ?? null,
      reason: m.reason ?? 'the command could not be started',
      outputTotal: m.output_total ?? null,
      stderrLines: m.stderr_lines ?? null,
    };
  }
  return null;
}

export function foldResults(messages: readonly ResultMessage[]): FoldedBatch {
  const runs = new Map<string, RunChange>();
  const events = new Map<string, EventRow>();
  const jobIds = new Set<number>();
  for (const m of messages) {
    const sent = new Date(m['x-send-datetime']);
    const start = m.start_time ? new Date(m.start_time) : m.type === 'starting' ? sent : null;
    // A missed run never ran anywhere: the runner that reported it is not its host.
    const host = m['x-host'] !== '' && m.status !== 'missed' ? m['x-host'] : null;
    jobIds.add(m.job_id);
    // Keyed by job too: a message naming another job than its run's must
    // not be folded into the run's change (the upsert then ignores it).
    const runKey = `${m.run_id}:${m.job_id}`;
    let change = runs.get(runKey);
    if (!change) {
      change = {
        runId: m.run_id,
        jobId: m.job_id,
        jobName: m.name ?? null,
        host,
        startedAt: start,
        firstSentAt: sent,
        outcome: null,
        outcomeKey: null,
      };
      runs.set(runKey, change);
    } else {
      change.startedAt = earliest(change.startedAt, start);
      if (sent.getTime() < change.firstSentAt.getTime()) change.firstSentAt = sent;
      if (host !== null) change.host = host;
      if (change.jobName === null && m.name) change.jobName = m.name;
    }
    if (change.outcome === null) {
      change.outcome = outcomeOf(m, sent);
      if (change.outcome) change.outcomeKey = `${m.run_id}:${m.type}`;
    }
    // Heartbeats are not events: the original had none, and they would flood the history.
    if (m.type !== 'heartbeat') {
      const key = `${m.run_id}:${m.type}`;
      if (!events.has(key)) {
        events.set(key, {
          job_id: m.job_id,
          datetime: sent,
          run_id: m.run_id,
          type: m.type,
          host: m['x-host'],
          return_code: m.return_code ?? null,
          message_key: key,
        });
      }
    }
  }
  return {
    runs: [...runs.values()].sort((a, b) => (a.runId < b.runId ? -1 : a.runId > b.runId ? 1 : 0)),
    events: [...events.values()],
    jobIds: [...jobIds].sort((a, b) => a - b),
  };
}
