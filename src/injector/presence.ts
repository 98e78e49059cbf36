import type { Knex } from '../core/db';
import { errorMessage } from '../core/async';
import type { Logger } from '../core/logger';
import type { Probe } from './probe';

/** A row written at most this often per injector. */
const EVERY_MS = 5000;

/**
 * The injector's own line in the `injectors` table, for /system: when it
 * last finished a cycle, how far behind it was then (how long the oldest
 * due job had been waiting at its last probe; 0 when nothing was overdue)
 * and how many jobs it claimed since the last write. Written at most every
 * five seconds, after a cycle, never in the claim's transaction; a failed
 * write is skipped (the next cycle writes again).
 */
export class InjectorPresence {
  private lastWrite = 0;
  private writing = false;
  private claimed = 0;
  private readonly startedAt = new Date();

  constructor(
    private readonly opts: {
      db: Knex;
      claimant: string;
      version: string;
      logger: Logger;
      everyMs?: number;
      now?: () => number;
    },
  ) {}

  /** After each cycle: its claims, and the probe it read. */
  note(claimedNow: number, probe: Probe | undefined): void {
    this.claimed += claimedNow;
    const now = (this.opts.now ?? Date.now)();
    if (this.writing || now - this.lastWrite < (this.opts.everyMs ?? EVERY_MS)) return;
    this.lastWrite = now;
    this.writing = true;
    const claimed = this.claimed;
    this.claimed = 0;
    const lag =
      probe?.nextDue && probe.nextDue < probe.dbNow
        ? Math.min(2 ** 31 - 1, probe.dbNow.getTime() - probe.nextDue.getTime())
        : 0;
    this.opts.db
      .raw(
        `INSERT INTO injectors (claimant, version, started_at, cycle_at, lag_ms, claimed)
         VALUES (?, ?, ?, UTC_TIMESTAMP(3), ?, ?)
         ON DUPLICATE KEY UPDATE version = VALUES(version), started_at = VALUES(started_at),
           cycle_at = VALUES(cycle_at), lag_ms = VALUES(lag_ms), claimed = LEAST(claimed + VALUES(claimed), 2147483647)`,
        [this.opts.claimant.slice(0, 255), this.opts.version, this.startedAt, lag, claimed],
      )
      .then(() =>
        this.opts.db.raw(
          'DELETE FROM injectors WHERE cycle_at < UTC_TIMESTAMP(3) - INTERVAL 7 DAY LIMIT 100',
        ),
      )
      .catch((err: unknown) =>
        this.opts.logger.debug({ err: errorMessage(err) }, 'could not record the injector cycle'),
      )
      .finally(() => {
        this.writing = false;
      });
  }
}
