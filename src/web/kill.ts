import type { Knex } from '../core/db';
import { killMessage, type ControlPublisher } from '../core/control';
import { BrokerUnavailableError } from '../core/errors';
import { FINAL_RUN_STATUSES, type RunStatus } from '../core/runs';
import { refreshJobStatus } from '../results/job-status';

/**
 * Kill a run (docs/runner.md, "Killing a run"), decided in the ledger:
 *
 * - an unknown run is `not_found` and a final one `final` (with its
 *   status); neither changes anything;
 * - with the broker away nothing changes and BrokerUnavailableError is
 *   thrown (the API answers 503);
 * - a run not started yet (queued: published, waiting for its occurrence
 *   or a retry's time) is marked `killed` at once, and its job's
 *   active_run_id cleared, in the transaction that publishes the kill
 *   order: whichever runner gets its delivery after that refuses it, and
 *   the results consumer never lets a late result undo `killed`;
 * - a running run gets `killed_at`/`killed_by`; the runner holding it ends
 *   its process group and reports it `killed`.
 *
 * The kill order is published (with a confirm) inside the transaction, so
 * a failed publish rolls the change back: nothing is ever left for later.
 */
export type KillOutcome =
  | { kind: 'not_found' }
  | { kind: 'final'; status: RunStatus }
  | { kind: 'killed' | 'killing'; runId: string; jobId: number; killedBy: string };

export interface KillRequest {
  runId: string;
  /** `api from <addr>`, `admin from <addr>`. */
  by: string;
}

export async function killRun(
  db: Knex,
  control: ControlPublisher | undefined,
  req: KillRequest,
): Promise<KillOutcome> {
  const first = (await db('runs').select('job_id').where('run_id', req.runId).first()) as
    { job_id: number } | undefined;
  if (!first) return { kind: 'not_found' };
  return db.transaction(async (trx) => {
    // The results consumer locks a job's row before its runs' rows: the same order here.
    await trx.raw('SELECT id FROM jobs WHERE id = ? FOR UPDATE', [first.job_id]);
    const [rows] = (await trx.raw(
      'SELECT run_id, job_id, status, killed_by FROM runs WHERE run_id = ? FOR UPDATE',
      [req.runId],
    )) as [Array<{ run_id: string; job_id: number; status: RunStatus; killed_by: string | null }>];
    const run = rows[0];
    if (!run) return { kind: 'not_found' } as const;
    if ((FINAL_RUN_STATUSES as readonly string[]).includes(run.status))
      return { kind: 'final', status: run.status } as const;
    if (!control?.available) throw new BrokerUnavailableError('broker unavailable');
    const notStarted = run.status === 'queued';
    const killedBy = run.killed_by ?? req.by;
    if (notStarted) {
      await trx.raw(
        `UPDATE runs SET status = 'killed', finished_at = UTC_TIMESTAMP(3), killed_at = UTC_TIMESTAMP(3),
           killed_by = ?, reason = ? WHERE run_id = ?`,
        [killedBy, `killed by ${killedBy} before it started`, run.run_id],
      );
      await trx.raw('UPDATE jobs SET active_run_id = NULL WHERE id = ? AND active_run_id = ?', [
        run.job_id,
        run.run_id,
      ]);
      await refreshJobStatus(trx, [run.run_id]);
    } else {
      await trx.raw(
        `UPDATE runs SET killed_at = COALESCE(killed_at, UTC_TIMESTAMP(3)), killed_by = ? WHERE run_id = ?`,
        [killedBy, run.run_id],
      );
    }
    await control.send(
      killMessage({
        runId: run.run_id,
        requestedBy: killedBy,
        requestedAt: new Date(),
        reason: undefined,
      }),
    );
    return {
      kind: notStarted ? 'killed' : 'killing',
      runId: run.run_id,
      jobId: Number(run.job_id),
      killedBy,
    } as const;
  });
}
