import type { Knex } from '../core/db';
import type { Logger } from '../core/logger';

/**
 * The pruner's part for notifications (docs/notifications.md): deletes
 * notifications that are done (`sent` or `failed`) and their delivery
 * attempts, in the same bounded chunks as events. Never a `pending` one:
 * it still has to be delivered.
 *
 * The repeat_after rule does not read these rows (it keeps its marks on
 * the job row, jobs.notify_marks), so any done one may go.
 */

/** States that are over: nothing will send these again. */
const DONE_STATES = ['sent', 'failed'] as const;

export interface NotificationCounts {
  notifications: number;
  notificationAttempts: number;
}

export interface NotificationPrunerDeps {
  db: Knex;
  logger: Logger;
  /** Rows per statement. */
  chunk: number;
  /** True once the pruner should stop (checked between chunks). */
  stopped: () => boolean;
  /** Where the counts are added up (the pruner's result). */
  counts: NotificationCounts;
}

export class NotificationPruner {
  constructor(private readonly deps: NotificationPrunerDeps) {}

  /** Done notifications written before `cutoff` (database clock). */
  async olderThan(cutoff: Date): Promise<void> {
    await this.deleteWhere((q) => q.where('n.created_at', '<', cutoff));
  }

  /** For every job, the done notifications older than its newest `keep` (by id); all of them with 0. */
  async keep(keep: number): Promise<void> {
    const { db } = this.deps;
    const jobs = (await db('notifications').distinct('job_id').orderBy('job_id')) as Array<{
      job_id: number;
    }>;
    for (const { job_id: jobId } of jobs) {
      if (this.deps.stopped()) return;
      let boundary: number | undefined;
      if (keep > 0) {
        const row = (await db('notifications')
          .select('id')
          .where('job_id', jobId)
          .orderBy('id', 'desc')
          .offset(keep - 1)
          .first()) as { id: number } | undefined;
        if (!row) continue; // no more than `keep` notifications
        boundary = Number(row.id);
      }
      await this.deleteWhere((q) => {
        q.where('n.job_id', jobId);
        if (boundary !== undefined) q.where('n.id', '<', boundary);
      });
    }
  }

  /**
   * Done notifications matching `filter`, `chunk` per round,
   * walking the primary key: a plain SELECT (no locks) finds a chunk, then
   * its rows are deleted by id.
   */
  private async deleteWhere(filter: (q: Knex.QueryBuilder) => void): Promise<void> {
    const { db, chunk } = this.deps;
    let lastId = 0;
    while (!this.deps.stopped()) {
      const q = db('notifications as n')
        .select('n.id')
        .where('n.id', '>', lastId)
        .whereIn('n.state', DONE_STATES)
        .orderBy('n.id')
        .limit(chunk);
      filter(q);
      const ids = ((await q) as Array<{ id: number | string }>).map((r) => Number(r.id));
      if (ids.length === 0) return;
      await this.deleteChunk(ids);
      lastId = ids[ids.length - 1]!;
      if (ids.length < chunk) return;
    }
  }

  /**
   * A chunk's attempts first, `chunk` rows per statement (a notification
   * retried for a day has a few dozen), then the notifications. The foreign
   * key would cascade, but one DELETE of notifications would then remove
   * an unbounded number of attempt rows. The chunk is finished even when a
   * stop comes: a notification never keeps only part of its attempts.
   */
  private async deleteChunk(ids: number[]): Promise<void> {
    const { db, chunk, counts } = this.deps;
    for (;;) {
      const n = await db('notification_attempts')
        .whereIn('notification_id', ids)
        .limit(chunk)
        .del();
      counts.notificationAttempts += n;
      if (n < chunk) break;
    }
    // Checked again: a done notification never becomes pending, but this costs nothing.
    const deleted = await db('notifications')
      .whereIn('id', ids)
      .whereIn('state', DONE_STATES)
      .del();
    counts.notifications += deleted;
    this.deps.logger.debug(
      { from: ids[0], to: ids[ids.length - 1], deleted },
      'deleted done notifications',
    );
  }
}
