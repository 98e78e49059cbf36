import { randomBytes } from 'node:crypto';

/**
 * Where a run stands. `queued` until a runner starts it; the rest are
 * final. `skipped` (overlap forbid) and `missed` (catch-up, starting
 * deadline) never ran (docs/policies.md); `killed` was ended (or kept from
 * starting) on request: the Kill button, the API, or overlap replace.
 */
export const RUN_STATUSES = [
  'queued',
  'running',
  'succeeded',
  'failed',
  'timed_out',
  'lost',
  'skipped',
  'missed',
  'killed',
] as const;
export type RunStatus = (typeof RUN_STATUSES)[number];
export const FINAL_RUN_STATUSES: readonly RunStatus[] = [
  'succeeded',
  'failed',
  'timed_out',
  'lost',
  'skipped',
  'missed',
  'killed',
];

/** A row of the `runs` table (times are UTC Dates). */
export interface RunRow {
  run_id: string;
  job_id: number;
  job_name: string | null;
  scheduled_for: Date;
  triggered_by: 'schedule' | 'manual' | 'retry';
  status: RunStatus;
  routing_key: string | null;
  claimed_by: string | null;
  host: string | null;
  queued_at: Date;
  published_at: Date | null;
  started_at: Date | null;
  finished_at: Date | null;
  heartbeat_at: Date | null;
  return_code: number | null;
  run_time: number | null;
  output_tail: string | null;
  reason: string | null;
  missed: number;
  /** 1 = the first run; a retry is the attempt after the run it retries (docs/policies.md). */
  attempt: number;
  /** The run that began a retry chain; null for a first attempt. */
  first_run_id: string | null;
  /** A retry waits in the ledger, unpublished, until then. */
  not_before: Date | null;
  /** When a kill was asked for (the Kill button, the API, overlap replace); null if never. */
  killed_at: Date | null;
  /** Who asked: `api from <addr>`, `admin from <addr>`, `overlap replace`. */
  killed_by: string | null;
}

/** A new run id: 32 lowercase hex characters, as the original's uuid4().hex. */
export function newRunId(): string {
  return randomBytes(16).toString('hex');
}
