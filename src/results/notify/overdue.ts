import { sleep } from '../../core/async';
import type { Knex } from '../../core/db';
import type { Logger } from '../../core/logger';
import { LoopService } from '../../core/lifecycle';
import type { NotifyTarget } from '../../core/notify/targets';
import { shortError } from '../errors';
import type { NotifyEvents } from './events';
import { JOB_NOTIFY_COLUMNS, recordOverdue, type JobNotifyRow } from './record';

/**
 * The dead-man's switch (docs/notifications.md). Runs in cronq-results,
 * which needs neither the injector nor any runner, and judges by the
 * database clock: a job with `alert_after` whose last success (or, before
 * any, the time its alert_after was set) is older than that is marked
 * overdue, once, and an `overdue` notification is written in the same
 * transaction. A success clears it (record.ts, sending `recovered`).
 * Disabled and paused jobs are not watched. Safe with several consumers:
 * the condition is checked again under the job's row lock.
 */

const OVERDUE = `alert_after_ms IS NOT NULL AND overdue_since IS NULL AND enabled = 1 AND paused_at IS NULL
  AND alert_base_at IS NOT NULL AND alert_base_at < UTC_TIMESTAMP(3) - INTERVAL (alert_after_ms * 1000) MICROSECOND`;

/** Mark overdue jobs (at most `limit`); returns their ids. */
export async function markOverdueJobs(
  db: Knex,
  targets: readonly NotifyTarget[],
  limit = 500,
): Promise<number[]> {
  const [candidates] = (await db.raw(`SELECT id FROM jobs WHERE ${OVERDUE} ORDER BY id LIMIT ?`, [
    limit,
  ])) as [Array<{ id: number }>];
  if (candidates.length === 0) return [];
  return db.transaction(async (trx) => {
    const ids = candidates.map((c) => c.id);
    const [rows] = (await trx.raw(
      `SELECT id, name, ${JOB_NOTIFY_COLUMNS} FROM jobs WHERE id IN (${ids.map(() => '?').join(',')}) AND ${OVERDUE} ORDER BY id FOR UPDATE`,
      ids,
    )) as [JobNotifyRow[]];
    await recordOverdue(trx, rows, targets);
    return rows.map((r) => Number(r.id));
  });
}

export interface OverdueCheckOptions {
  db: Knex;
  targets: readonly NotifyTarget[];
  everyMs: number;
  logger: Logger;
  random?: () => number;
}

export class OverdueCheck extends LoopService<NotifyEvents> {
  private marked = 0;

  constructor(private readonly opts: OverdueCheckOptions) {
    super();
  }

  status(): Record<string, unknown> {
    return { marked: this.marked };
  }

  protected async run(signal: AbortSignal): Promise<void> {
    const { logger, everyMs } = this.opts;
    const random = this.opts.random ?? Math.random;
    while (!signal.aborted) {
      try {
        const ids = await markOverdueJobs(this.opts.db, this.opts.targets);
        if (ids.length > 0) {
          this.marked += ids.length;
          logger.warn(
            { jobs: ids.slice(0, 20), count: ids.length },
            'jobs overdue: no successful run within alert_after',
          );
          this.emit('overdue:marked', { count: ids.length, jobIds: ids });
        }
      } catch (err) {
        const error = shortError(err);
        logger.debug({ err: error }, 'overdue check failed; trying again');
        this.emit('overdue:failed', { error });
      }
      await sleep(everyMs * (0.75 + random() * 0.5), signal);
    }
  }
}
