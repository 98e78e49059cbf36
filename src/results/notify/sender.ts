import { EventEmitter } from 'node:events';
import { sleep } from '../../core/async';
import type { Knex } from '../../core/db';
import type { Logger } from '../../core/logger';
import type { Service } from '../../core/lifecycle';
import type { NotifyConfig } from '../../core/notify/config';
import { shortError } from '../errors';
import { buildMessage, type JobFacts, type NotificationRow, type RunFacts } from './body';
import type { NotifyEvents } from './events';
import { GiveWay } from './give-way';
import { moveOutbox, OUTBOX_ROWS_PER_MOVE } from './outbox';
import {
  ATTEMPT_TIMEOUT_MS,
  createMailer,
  postWebhook,
  type AttemptResult,
  type Mailer,
  type Target,
} from './transports';

/**
 * Sends the notifications the results consumer wrote (docs/notifications.md),
 * in its own loop beside the results, so a slow or dead receiver never
 * delays storing results. Each poll first moves what the results wrote to
 * the outbox into `notifications` (outbox.ts), then claims due rows in a short transaction
 * (FOR UPDATE SKIP LOCKED, then `next_at` moved a lease ahead), so with any
 * number of consumers a row is taken by one of them; a consumer that dies
 * mid-send leaves the row to be taken again once the lease has passed.
 * At most `concurrency` are in flight; each attempt has 10 s, is recorded
 * in notification_attempts, and a failed one is retried with backoff
 * (retryBaseMs doubling, at most an hour apart) until 24 h after the
 * notification was written; then it is marked failed. While results are
 * being stored, sending waits too (give-way.ts: at most MAX_YIELD_MS in a
 * busy spell): a burst of failures is stored first and notified a moment
 * later.
 */

/** A claimed row is left alone by other senders this long (well past one attempt's timeout). */
export const LEASE_MS = 6 * ATTEMPT_TIMEOUT_MS;
export const GIVE_UP_AFTER_MS = 24 * 3600 * 1000;
const MAX_RETRY_DELAY_MS = 3600 * 1000;

interface Outcome {
  id: number;
  status: number | null;
  error: string | null;
  ms: number;
  state: 'sent' | 'failed' | 'pending';
  delayMs: number;
}

export interface NotifySenderOptions {
  db: Knex;
  config: NotifyConfig;
  logger: Logger;
  random?: () => number;
  /**
   * Results are being stored (ResultsService.busy): sending waits for them
   * (give-way.ts), so storing results comes first.
   */
  busy?: () => boolean;
}

export class NotifySender extends EventEmitter<NotifyEvents> implements Service {
  private readonly abort = new AbortController();
  private readonly inFlight = new Set<Promise<void>>();
  private loop: Promise<void> | undefined;
  private mailer: Mailer | undefined;
  private sent = 0;
  private failedAttempts = 0;
  private readonly outcomes: Array<Outcome & { resolve(): void; reject(err: unknown): void }> = [];
  private writing: Promise<void> | undefined;
  private moveFailing = false;

  constructor(private readonly opts: NotifySenderOptions) {
    super();
  }

  async start(): Promise<void> {
    if (this.opts.config.concurrency === 0) {
      this.opts.logger.info(
        'notifications are not sent by this consumer (CRONQ_NOTIFY_CONCURRENCY=0)',
      );
      return;
    }
    this.loop = this.run();
  }

  async stop(): Promise<void> {
    this.abort.abort();
    await this.loop;
    // Attempts in flight end within their timeout; their outcome is recorded.
    await Promise.allSettled([...this.inFlight]);
    this.mailer?.close();
  }

  status(): Record<string, unknown> {
    return { inFlight: this.inFlight.size, sent: this.sent, failedAttempts: this.failedAttempts };
  }

  /**
   * Record an attempt and the row's new state. The attempts that end while
   * a write is going are written together in the next one (one transaction
   * for many), so a busy sender costs the database little.
   */
  private record(o: Outcome): Promise<void> {
    return new Promise((resolve, reject) => {
      this.outcomes.push({ ...o, resolve, reject });
      this.writing ??= this.writeOutcomes().finally(() => {
        this.writing = undefined;
      });
    });
  }

  private async writeOutcomes(): Promise<void> {
    while (this.outcomes.length > 0) {
      const batch = this.outcomes.splice(0, 200);
      try {
        await this.opts.db.transaction(async (trx) => {
          // A notification pruned meanwhile (sent by another consumer after this
          // one's lease ran out) takes no attempt: its foreign key would fail
          // the whole batch, and with it the outcomes of the others.
          const [present] = (await trx.raw(
            `SELECT id FROM notifications WHERE id IN (${batch.map(() => '?').join(',')})`,
            batch.map((o) => o.id),
          )) as [Array<{ id: number }>];
          const ids = new Set(present.map((r) => Number(r.id)));
          const kept = batch.filter((o) => ids.has(o.id));
          if (kept.length === 0) return;
          await trx.raw(
            `INSERT INTO notification_attempts (notification_id, at, status_code, error, duration_ms) VALUES ${kept.map(() => '(?, UTC_TIMESTAMP(3), ?, ?, ?)').join(',')}`,
            kept.flatMap((o) => [o.id, o.status, o.error, o.ms]),
          );
          const derived = kept
            .map((_, k) =>
              k === 0
                ? 'SELECT ? AS id, ? AS st, ? AS err, ? AS state, ? AS delay_us'
                : 'SELECT ?, ?, ?, ?, ?',
            )
            .join(' UNION ALL ');
          await trx.raw(
            `UPDATE notifications n JOIN (${derived}) o ON o.id = n.id SET
               n.attempts = n.attempts + 1, n.last_status = o.st, n.last_error = o.err, n.state = o.state,
               n.sent_at = IF(o.state = 'sent', UTC_TIMESTAMP(3), n.sent_at),
               n.next_at = IF(o.state = 'pending', UTC_TIMESTAMP(3) + INTERVAL o.delay_us MICROSECOND, n.next_at)`,
            kept.flatMap((o) => [o.id, o.status, o.error, o.state, Math.round(o.delayMs * 1000)]),
          );
        });
        for (const o of batch) o.resolve();
      } catch (err) {
        // Not recorded: the lease runs out and the notification is tried again.
        for (const o of batch) o.reject(err);
      }
    }
  }

  private async run(): Promise<void> {
    const { config, logger } = this.opts;
    const signal = this.abort.signal;
    const giveWay = new GiveWay();
    while (!signal.aborted) {
      // A burst is stored first; a sustained load holds sending back only for
      // the first MAX_YIELD_MS of it (give-way.ts).
      if (this.opts.busy && giveWay.shouldWait(this.opts.busy(), Date.now())) {
        await sleep(50, signal);
        continue;
      }
      const moved = await this.moveOutbox();
      const room = config.concurrency - this.inFlight.size;
      let claimed: NotificationRow[] = [];
      if (room > 0) {
        try {
          claimed = await this.claim(room);
        } catch (err) {
          const error = shortError(err);
          logger.debug({ err: error }, 'could not look for notifications to send');
          this.emit('claim:failed', { error });
        }
      }
      let facts: Awaited<ReturnType<NotifySender['facts']>> | undefined;
      try {
        if (claimed.length > 0) facts = await this.facts(claimed);
      } catch (err) {
        // Not sent now: their lease runs out and they are claimed again.
        logger.debug({ err: shortError(err) }, 'could not read what the notifications say');
        claimed = [];
      }
      for (const row of claimed) {
        const p = this.deliver(
          row,
          facts?.runs.get(row.run_id ?? ''),
          facts?.jobs.get(Number(row.job_id)),
        ).catch((err: unknown) =>
          logger.error(
            { err: shortError(err), id: row.id },
            'unexpected error sending a notification',
          ),
        );
        this.inFlight.add(p);
        void p.finally(() => this.inFlight.delete(p));
      }
      // A full claim, or a full move, means more may be due: look again soon.
      const more = (claimed.length === room && room > 0) || moved === OUTBOX_ROWS_PER_MOVE;
      await sleep(more ? 10 : config.pollMs, signal);
    }
  }

  /**
   * Move what the results wrote to the outbox into `notifications`, where
   * it is claimed and sent (outbox.ts). Returns the outbox rows moved.
   */
  private async moveOutbox(): Promise<number> {
    const { logger } = this.opts;
    try {
      const { rows, moved, bad, setAside } = await moveOutbox(this.opts.db);
      if (this.moveFailing) logger.info('notifications are moved out of the outbox again');
      this.moveFailing = false;
      if (bad > 0)
        logger.error(
          { dropped: bad },
          'malformed notifications in notification_outbox were dropped',
        );
      for (const s of setAside)
        logger.error(
          { outbox_id: s.id, err: s.error },
          'a notification_outbox row cannot be moved; set aside (its failed column says why), the others go on',
        );
      if (moved > 0) this.emit('outbox:moved', { rows, notifications: moved });
      return rows;
    } catch (err) {
      const error = shortError(err);
      // Notifications wait while this lasts: said once at warn, then at debug.
      if (!this.moveFailing)
        logger.warn({ err: error }, 'could not move notifications out of the outbox; trying again');
      else logger.debug({ err: error }, 'still cannot move notifications out of the outbox');
      this.moveFailing = true;
      this.emit('claim:failed', { error });
      return 0;
    }
  }

  /** Take up to `limit` due rows for LEASE_MS. */
  private async claim(limit: number): Promise<NotificationRow[]> {
    return this.opts.db.transaction(async (trx) => {
      const [rows] = (await trx.raw(
        `SELECT id, job_id, job_name, category, run_id, event, failures, target, attempts, created_at
         FROM notifications WHERE state = 'pending' AND next_at <= UTC_TIMESTAMP(3)
         ORDER BY next_at, id LIMIT ? FOR UPDATE SKIP LOCKED`,
        [limit],
      )) as [NotificationRow[]];
      if (rows.length === 0) return [];
      await trx.raw(
        `UPDATE notifications SET next_at = UTC_TIMESTAMP(3) + INTERVAL ? MICROSECOND WHERE id IN (${rows.map(() => '?').join(',')})`,
        [LEASE_MS * 1000, ...rows.map((r) => r.id)],
      );
      return rows;
    });
  }

  /** The runs and jobs the claimed rows name, in two queries for the whole claim. */
  private async facts(
    rows: readonly NotificationRow[],
  ): Promise<{ runs: Map<string, RunFacts>; jobs: Map<number, JobFacts> }> {
    const { db } = this.opts;
    const runIds = [...new Set(rows.map((r) => r.run_id).filter((r): r is string => r !== null))];
    const jobIds = [...new Set(rows.map((r) => Number(r.job_id)))];
    const [[runs], [jobs]] = (await Promise.all([
      runIds.length > 0
        ? db.raw(
            `SELECT run_id, status, reason, return_code, scheduled_for, started_at, finished_at, host, attempt, output_tail FROM runs WHERE run_id IN (${runIds.map(() => '?').join(',')})`,
            runIds,
          )
        : Promise.resolve([[]]),
      db.raw(
        `SELECT id, failing_since, alert_after_ms, alert_base_at FROM jobs WHERE id IN (${jobIds.map(() => '?').join(',')})`,
        jobIds,
      ),
    ])) as [[RunFacts[]], [Array<JobFacts & { id: number }>]];
    return {
      runs: new Map(runs.map((r) => [r.run_id, r])),
      jobs: new Map(jobs.map((j) => [Number(j.id), j])),
    };
  }

  private async deliver(
    row: NotificationRow,
    run: RunFacts | undefined,
    job: JobFacts | undefined,
  ): Promise<void> {
    const { config, logger } = this.opts;
    let target: Target;
    try {
      target = JSON.parse(row.target) as Target;
    } catch {
      target = {};
    }
    const started = Date.now();
    let result: AttemptResult;
    try {
      const message = buildMessage(row, run, job, config.publicUrl);
      if (target.webhook)
        result = await postWebhook(
          target.webhook,
          message,
          target.format,
          config.webhookSecret,
          Number(row.id),
        );
      else if (target.email && config.smtpUrl) {
        this.mailer ??= createMailer(config.smtpUrl, config.mailFrom);
        result = await this.mailer.send(target.email, message);
      } else if (target.email)
        result = { ok: false, status: null, error: 'CRONQ_SMTP_URL is not set' };
      else result = { ok: false, status: null, error: 'the target names no webhook or e-mail' };
    } catch (err) {
      result = { ok: false, status: null, error: shortError(err).slice(0, 200) };
    }
    const attempt = Number(row.attempts) + 1;
    const delay = Math.min(
      MAX_RETRY_DELAY_MS,
      config.retryBaseMs *
        2 ** Math.min(attempt - 1, 20) *
        (0.9 + (this.opts.random ?? Math.random)() * 0.2),
    );
    const giveUp =
      !result.ok && Date.now() + delay - new Date(row.created_at).getTime() > GIVE_UP_AFTER_MS;
    await this.record({
      id: Number(row.id),
      status: result.status,
      error: result.error,
      ms: Date.now() - started,
      state: result.ok ? 'sent' : giveUp ? 'failed' : 'pending',
      delayMs: delay,
    });
    if (result.ok) this.sent += 1;
    else this.failedAttempts += 1;
    const fields = {
      id: Number(row.id),
      job_id: row.job_id,
      event: row.event,
      status: result.status,
      attempt,
    };
    if (result.ok) logger.info(fields, 'notification sent');
    else if (giveUp)
      logger.warn({ ...fields, err: result.error }, 'notification given up after 24 h');
    else
      logger.info(
        { ...fields, err: result.error, retry_in_ms: Math.round(delay) },
        'notification not delivered; retrying later',
      );
    this.emit('attempt', {
      id: Number(row.id),
      event: row.event,
      ok: result.ok,
      status: result.status,
      error: result.error,
      attempt,
      gaveUp: giveUp,
    });
  }
}
