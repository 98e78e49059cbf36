import { exponentialBackoff, sleep, type Backoff } from '../../core/async';
import type { Knex } from '../../core/db';
import type { Logger } from '../../core/logger';
import { LoopService } from '../../core/lifecycle';
import type { NotifyTarget } from '../../core/notify/targets';
import { isLockConflict, shortError } from '../errors';
import type { NotifyEvents } from './events';
import {
  JOB_NOTIFY_COLUMNS,
  recordNotifications,
  type FinalOutcome,
  type JobNotifyRow,
} from './record';

/**
 * Notifications for the runs the injector records `missed` itself
 * (docs/notifications.md): catch-up occurrences skipped after an outage and
 * runs already past their starting deadline when claimed. No result message
 * ever comes for them, so the injector writes a notice (`run_notices`) in
 * the claim transaction that records the run, and cronq-results takes the
 * notices here: in one transaction it claims up to NOTICES_PER_TAKE of them
 * (oldest first, FOR UPDATE SKIP LOCKED, so several consumers take
 * different ones) and deletes them, locks their jobs in id order and
 * writes the notifications with the same rules as a result's (record.ts:
 * repeat_after, the failing streak). A notification therefore exists
 * exactly when its notice is gone, and is written once with any number of
 * consumers and across restarts. A notice whose job was removed is deleted
 * and notifies nothing.
 *
 * Locks: notices first, then jobs in id order, and no notice lock is
 * asked for once a job lock is held. The notices are claimed on their
 * created_at index (FORCE INDEX: a scan of the table would lock every
 * notice, not just those taken) and deleted at once, one statement per
 * row by its primary key: a DELETE of a list of keys may lock the next
 * key after each too (seen on MariaDB 10.11), which can be another
 * consumer's, and two consumers each waiting for the other's notices
 * while one holds job locks deadlocked. With this order nothing cycles
 * with the other writers: a result batch, the lost-run sweep and the
 * overdue check lock jobs in id order and never touch notices; the
 * injector's claim locks jobs with SKIP LOCKED (never waits for one) and
 * only inserts notices, which waits on no row lock under READ COMMITTED
 * (no gap locks; the transaction asks for it whatever the pool's level).
 * Two consumers whose deletes still cross are a lock conflict, retried at
 * once like a result batch's (batch-writer.ts); any other failure (the
 * database away) changes nothing and is tried again with backoff.
 */

/** Notices taken per transaction: at most this many job locks, held for about as many short statements. */
export const NOTICES_PER_TAKE = 100;

/** Immediate retries of a take that met another consumer's locks, before it counts as failed. */
const LOCK_RETRIES = 3;

/** How often each consumer looks for notices (±25 %); at once again after a full take. */
export const MISSED_POLL_MS = 1000;

export interface RunNotice {
  run_id: string;
  job_id: number;
  created_at: Date;
}

export interface MissedTake {
  /** Notices taken and deleted. */
  notices: number;
  /** Notifications written for them (none for targets that do not list `missed`, or held back). */
  notifications: number;
  /** The runs taken whose job still exists. */
  runIds: string[];
  /** Notices whose job was removed: deleted, nothing written. */
  gone: number;
}

const NOTHING: MissedTake = { notices: 0, notifications: 0, runIds: [], gone: 0 };

/**
 * The finals record.ts is given for `notices`, oldest first (so a job's
 * failure count grows in the order its runs were missed): status `missed`,
 * the job's current name, and none for a job that is gone.
 */
export function finalsOfNotices(
  notices: readonly RunNotice[],
  jobs: ReadonlyMap<number, Pick<JobNotifyRow, 'name'>>,
): FinalOutcome[] {
  return [...notices]
    .sort(
      (a, b) =>
        a.created_at.getTime() - b.created_at.getTime() ||
        (a.run_id < b.run_id ? -1 : a.run_id > b.run_id ? 1 : 0),
    )
    .filter((n) => jobs.has(Number(n.job_id)))
    .map((n) => ({
      runId: n.run_id,
      jobId: Number(n.job_id),
      status: 'missed',
      jobName: jobs.get(Number(n.job_id))!.name ?? null,
    }));
}

function placeholders(n: number): string {
  return Array.from({ length: n }, () => '?').join(',');
}

/**
 * The missed runs of `runIds` whose job has a later occurrence that
 * succeeded already (stored before the notice was taken): the job is not
 * failing because of them.
 */
async function supersededRuns(trx: Knex.Transaction, runIds: string[]): Promise<Set<string>> {
  if (runIds.length === 0) return new Set();
  const [rows] = (await trx.raw(
    `SELECT m.run_id FROM runs m WHERE m.run_id IN (${placeholders(runIds.length)})
       AND EXISTS (SELECT 1 FROM runs s WHERE s.job_id = m.job_id
                   AND s.scheduled_for > m.scheduled_for AND s.status = 'succeeded')`,
    runIds,
  )) as [Array<{ run_id: string }>];
  return new Set(rows.map((r) => r.run_id));
}

/** Take up to `limit` notices and write their notifications; see the comment above. */
export async function takeMissedNotices(
  db: Knex,
  targets: readonly NotifyTarget[],
  limit = NOTICES_PER_TAKE,
): Promise<MissedTake> {
  // A plain look first: in the common case there is none and no lock is taken.
  const [peek] = (await db.raw('SELECT run_id FROM run_notices LIMIT 1')) as [unknown[]];
  if (peek.length === 0) return NOTHING;
  return db.transaction(
    async (trx) => {
      const [notices] = (await trx.raw(
        `SELECT run_id, job_id, created_at FROM run_notices FORCE INDEX (idx_run_notices_created)
          ORDER BY created_at LIMIT ? FOR UPDATE SKIP LOCKED`,
        [limit],
      )) as [RunNotice[]];
      if (notices.length === 0) return NOTHING;
      // Before any job lock, one key per statement (see above).
      for (const n of notices)
        await trx.raw('DELETE FROM run_notices WHERE run_id = ?', [n.run_id]);
      const jobIds = [...new Set(notices.map((n) => Number(n.job_id)))].sort((a, b) => a - b);
      const [jobRows] = (await trx.raw(
        `SELECT id, name, ${JOB_NOTIFY_COLUMNS} FROM jobs WHERE id IN (${placeholders(jobIds.length)}) ORDER BY id FOR UPDATE`,
        jobIds,
      )) as [JobNotifyRow[]];
      const jobs = new Map(jobRows.map((j) => [Number(j.id), j]));
      const finals = finalsOfNotices(notices, jobs);
      // Told, but no failing streak, when a later occurrence has succeeded meanwhile.
      const stale = await supersededRuns(
        trx,
        finals.map((f) => f.runId),
      );
      for (const f of finals) if (stale.has(f.runId)) f.stale = true;
      const notifications = await recordNotifications(trx, finals, new Set(), jobs, targets);
      return {
        notices: notices.length,
        notifications,
        runIds: finals.map((f) => f.runId),
        gone: notices.length - finals.length,
      };
    },
    { isolationLevel: 'read committed' },
  );
}

export interface MissedNoticesOptions {
  db: Knex;
  targets: readonly NotifyTarget[];
  logger: Logger;
  /** Default MISSED_POLL_MS. */
  everyMs?: number;
  /** Between takes that failed; default 250 ms doubling up to 30 s, with jitter. */
  backoff?: Backoff;
  random?: () => number;
}

/** The loop: a part of cronq-results (src/cli/results.ts), beside the sender and the overdue check. */
export class MissedNotices extends LoopService<NotifyEvents> {
  private taken = 0;
  private written = 0;
  private attempt = 0;

  constructor(private readonly opts: MissedNoticesOptions) {
    super();
  }

  status(): Record<string, unknown> {
    return { taken: this.taken, notifications: this.written, failing: this.attempt > 0 };
  }

  protected async run(signal: AbortSignal): Promise<void> {
    const random = this.opts.random ?? Math.random;
    const every = this.opts.everyMs ?? MISSED_POLL_MS;
    const backoff = this.opts.backoff ?? exponentialBackoff(250, 30_000, random);
    while (!signal.aborted) {
      const full = await this.takeOnce();
      if (full) continue;
      await sleep(
        this.attempt > 0 ? backoff.delay(this.attempt - 1) : every * (0.75 + random() * 0.5),
        signal,
      );
    }
  }

  /** Takes that met another consumer's locks are retried at once, a few times. */
  private async take(): Promise<MissedTake> {
    const random = this.opts.random ?? Math.random;
    for (let attempt = 1; ; attempt += 1) {
      try {
        return await takeMissedNotices(this.opts.db, this.opts.targets);
      } catch (err) {
        if (!isLockConflict(err) || attempt > LOCK_RETRIES) throw err;
        this.opts.logger.debug(
          { err: shortError(err), attempt },
          'missed-run notices: lock conflict; trying again',
        );
        await sleep(10 + random() * 50 * attempt, this.abort.signal);
      }
    }
  }

  /** One take; true when it was full (more may be waiting). Never throws. */
  private async takeOnce(): Promise<boolean> {
    const { logger } = this.opts;
    try {
      const take = await this.take();
      if (this.attempt > 0) logger.info('missed-run notices are taken again');
      this.attempt = 0;
      if (take.notices === 0) return false;
      this.taken += take.notices;
      this.written += take.notifications;
      logger.info(
        {
          runs: take.runIds.length,
          run_ids: take.runIds.slice(0, 20),
          notifications: take.notifications,
          jobs_gone: take.gone,
        },
        'runs the injector recorded missed: notifications written',
      );
      this.emit('missed:taken', take);
      return take.notices >= NOTICES_PER_TAKE;
    } catch (err) {
      const error = shortError(err);
      if (this.attempt === 0)
        logger.warn({ err: error }, 'could not take missed-run notices; retrying with backoff');
      this.attempt += 1;
      this.emit('missed:failed', { error, attempt: this.attempt });
      return false;
    }
  }
}
