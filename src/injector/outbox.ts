import type { Knex } from '../core/db';
import { refreshJobStatus } from '../results/job-status';
import { execute, selectRows } from './claim';
import { DEFAULT_ROUTING_KEY } from '../core/topology';
import type { PlannedRun } from './plan';

/**
 * The database side of publishing: what happens to a run row once the
 * broker has answered, and the retaking of runs whose publish was never
 * confirmed (the "still due" half of "published or still due").
 */

const placeholders = (n: number) => Array.from({ length: n }, () => '?').join(', ');

/** Record the broker's confirm. One statement per batch. */
export async function markPublished(db: Knex, runIds: readonly string[]): Promise<void> {
  if (runIds.length === 0) return;
  await execute(
    db,
    `UPDATE runs SET published_at = UTC_TIMESTAMP(3) WHERE run_id IN (${placeholders(runIds.length)}) AND published_at IS NULL`,
    runIds,
  );
}

export function unroutableReason(routingKey: string): string {
  return `no queue bound for routing key ${routingKey}`;
}

/**
 * The broker returned these runs: no queue is bound for their routing key.
 * They end as failed runs with the reason (never retried: a republish
 * would be returned again), and their jobs' status columns follow by the
 * same rule the results consumer applies (newest run by scheduled_for).
 */
export async function markUnroutable(db: Knex, runs: readonly PlannedRun[]): Promise<void> {
  if (runs.length === 0) return;
  const ids = runs.map((r) => r.runId);
  await db.transaction(async (trx) => {
    await execute(
      trx,
      `UPDATE runs SET status = 'failed', reason = CONCAT(?, COALESCE(routing_key, ?)), finished_at = UTC_TIMESTAMP(3)
        WHERE run_id IN (${placeholders(ids.length)}) AND status = 'queued'`,
      [unroutableReason(''), DEFAULT_ROUTING_KEY, ...ids],
    );
    await refreshJobStatus(trx, ids);
  });
}

interface UnpublishedRow {
  run_id: string;
  job_id: number;
  job_name: string | null;
  scheduled_for: Date;
  triggered_by: 'schedule' | 'manual';
  routing_key: string | null;
  missed: number;
}

interface JobBits {
  id: number;
  name: string | null;
  command: string | null;
  timeout: number | null;
}

export interface RetakeResult {
  runs: PlannedRun[];
  /** Runs whose job was removed before they could be published; marked failed. */
  orphaned: number;
  full: boolean;
}

/**
 * Take runs that are queued but were never confirmed published, to publish
 * them again under the same run id: either those whose last attempt is
 * older than `olderThanMs` (their injector crashed, or the broker was away),
 * or the given ones (this injector's own failed publishes, retried as soon
 * as the broker is back). SKIP LOCKED plus the `publish_attempt_at` lease
 * keep two injectors from retaking the same run at the same time.
 */
export async function retakeUnpublished(
  db: Knex,
  which: { olderThanMs: number } | { runIds: readonly string[] },
  opts: { batchSize: number; claimant: string },
): Promise<RetakeResult> {
  return db.transaction(
    async (trx) => {
      const filter =
        'runIds' in which
          ? { sql: `run_id IN (${placeholders(which.runIds.length)})`, bindings: [...which.runIds] }
          : {
              sql: 'COALESCE(publish_attempt_at, queued_at) < UTC_TIMESTAMP(3) - INTERVAL ? MICROSECOND',
              bindings: [which.olderThanMs * 1000],
            };
      if ('runIds' in which && which.runIds.length === 0)
        return { runs: [], orphaned: 0, full: false };
      const rows = await selectRows<UnpublishedRow>(
        trx,
        `SELECT run_id, job_id, job_name, scheduled_for, triggered_by, routing_key, missed FROM runs
          WHERE published_at IS NULL AND status = 'queued' AND ${filter.sql}
          ORDER BY queued_at LIMIT ? FOR UPDATE SKIP LOCKED`,
        [...filter.bindings, opts.batchSize],
      );
      if (rows.length === 0) return { runs: [], orphaned: 0, full: false };
      const jobIds = [...new Set(rows.map((r) => r.job_id))];
      const jobs = new Map(
        (
          await selectRows<JobBits>(
            trx,
            `SELECT id, name, command, timeout FROM jobs WHERE id IN (${placeholders(jobIds.length)})`,
            jobIds,
          )
        ).map((j) => [j.id, j]),
      );
      const runs: PlannedRun[] = [];
      const orphans: string[] = [];
      for (const r of rows) {
        const job = jobs.get(r.job_id);
        if (!job) {
          orphans.push(r.run_id);
          continue;
        }
        runs.push({
          runId: r.run_id,
          jobId: r.job_id,
          jobName: r.job_name ?? job.name ?? `job-${r.job_id}`,
          command: job.command ?? '',
          routingKey: r.routing_key?.trim() || DEFAULT_ROUTING_KEY,
          timeoutSeconds: job.timeout && job.timeout > 0 ? job.timeout : null,
          scheduledFor: r.scheduled_for,
          trigger: r.triggered_by,
          missed: r.missed,
        });
      }
      if (runs.length > 0) {
        await execute(
          trx,
          `UPDATE runs SET publish_attempt_at = UTC_TIMESTAMP(3), claimed_by = ? WHERE run_id IN (${placeholders(runs.length)})`,
          [opts.claimant, ...runs.map((r) => r.runId)],
        );
      }
      if (orphans.length > 0) {
        await execute(
          trx,
          `UPDATE runs SET status = 'failed', reason = 'the job was removed before its run could be published', finished_at = UTC_TIMESTAMP(3)
            WHERE run_id IN (${placeholders(orphans.length)})`,
          orphans,
        );
      }
      return { runs, orphaned: orphans.length, full: rows.length >= opts.batchSize };
    },
    { isolationLevel: 'read committed' },
  );
}
