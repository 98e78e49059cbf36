import { killMessage, type ControlPublisher } from '../core/control';
import { errorMessage } from '../core/async';
import type { Knex } from '../core/db';
import type { Logger } from '../core/logger';
import { refreshJobStatus } from '../results/job-status';
import type { ReplacedRun } from './plan';

/** Who a replace's kill names (runs.killed_by). */
export const REPLACE_KILLED_BY = 'overlap replace';

export function replacedReason(by: string): string {
  return `replaced by ${by}`;
}

/**
 * overlap replace, in the claim's transaction (the job rows are locked):
 * the replaced run, if not started yet, is marked `killed` now ("replaced
 * by <run id>"); if running, it gets killed_at/killed_by and its runner,
 * told by the kill order published after the commit (`sendReplaceKills`),
 * reports it `killed`. A run that became final meanwhile is left as it is.
 * Returns the runs still to be killed (both kinds: a queued run's delivery
 * may already be with a runner).
 */
export async function markReplaced(
  trx: Knex.Transaction,
  replaced: readonly ReplacedRun[],
): Promise<ReplacedRun[]> {
  const out: ReplacedRun[] = [];
  const killedNow: string[] = [];
  for (const r of replaced) {
    const [res] = (await trx.raw(
      `UPDATE runs SET
         finished_at = IF(status = 'queued', UTC_TIMESTAMP(3), finished_at),
         reason = IF(status = 'queued', ?, reason),
         killed_at = COALESCE(killed_at, UTC_TIMESTAMP(3)),
         killed_by = COALESCE(killed_by, ?),
         status = IF(status = 'queued', 'killed', status)
       WHERE run_id = ? AND job_id = ? AND status IN ('queued', 'running')`,
      [`${replacedReason(r.by)} before it started`, REPLACE_KILLED_BY, r.runId, r.jobId],
    )) as [{ affectedRows: number }];
    if (res.affectedRows === 0) continue;
    out.push(r);
    if (r.status === 'queued') killedNow.push(r.runId);
  }
  if (killedNow.length > 0) await refreshJobStatus(trx, killedNow);
  return out;
}

/**
 * Publish the kill order of each replaced run, before the new runs'
 * job messages. A publish that fails is logged: the old run then ends by
 * itself (or its timeout) and is recorded as it ends.
 */
export async function sendReplaceKills(
  control: ControlPublisher | undefined,
  replaced: readonly ReplacedRun[],
  logger: Logger,
): Promise<void> {
  for (const r of replaced) {
    try {
      if (!control) throw new Error('no control publisher');
      await control.send(
        killMessage({
          runId: r.runId,
          requestedBy: REPLACE_KILLED_BY,
          requestedAt: new Date(),
          reason: replacedReason(r.by),
        }),
      );
      logger.info({ job_id: r.jobId, run_id: r.runId, by: r.by }, 'run replaced: kill sent');
    } catch (err) {
      logger.warn(
        { job_id: r.jobId, run_id: r.runId, by: r.by, err: errorMessage(err) },
        'could not send the kill of a replaced run; it ends by itself',
      );
    }
  }
}
