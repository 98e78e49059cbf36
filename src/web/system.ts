import type { Knex } from '../core/db';
import { errorMessage, within } from '../core/async';
import { SILENT_AFTER_PERIODS } from '../core/presence';

/**
 * What /system reads from the database: the runners (`runners`, from their
 * announcements) and injectors (`injectors`, from their cycles) heard from
 * in the last day, the results waiting to be written (runs still queued or
 * running are not this: a backlog shows as results on the broker's
 * queue, read apart), and the schema version. Each is one small indexed
 * query; a database that does not answer makes the page say so instead of
 * failing.
 */

export interface RunnerLine {
  instance: string;
  host: string;
  pid: number;
  queue: string;
  concurrency: number;
  running: number;
  version: string;
  started_at: Date | null;
  seen_at: Date;
  period_ms: number;
  /** Not heard from for SILENT_AFTER_PERIODS of its own period. */
  silent: boolean;
}

export interface InjectorLine {
  claimant: string;
  version: string;
  started_at: Date | null;
  cycle_at: Date;
  lag_ms: number | null;
  claimed: number;
  /** No cycle for a minute: stopped, or stuck. */
  silent: boolean;
}

export interface SystemFromDb {
  database: { ok: true; now: Date } | { ok: false; error: string };
  schema: { latest: string | null; count: number } | null;
  runners: RunnerLine[];
  injectors: InjectorLine[];
  /** Runs marked lost in the last day. */
  lostToday: number;
}

/** Daemons not heard from for longer are left off the page (their rows go after a week). */
const SHOWN_FOR = '1 DAY';
const INJECTOR_SILENT_MS = 60_000;

/** A database that does not answer within this long is shown unreachable. */
const DB_TIMEOUT_MS = 3000;

export async function systemFromDb(db: Knex): Promise<SystemFromDb> {
  const read = within(readAll(db), DB_TIMEOUT_MS);
  const r = await read;
  return r.done ? r.value : unreachable(`no answer within ${DB_TIMEOUT_MS / 1000} s`);
}

function unreachable(error: string): SystemFromDb {
  return { database: { ok: false, error }, schema: null, runners: [], injectors: [], lostToday: 0 };
}

async function readAll(db: Knex): Promise<SystemFromDb> {
  try {
    const [[clock]] = (await db.raw('SELECT UTC_TIMESTAMP(3) AS now')) as unknown as [
      [{ now: Date }],
    ];
    const now = clock.now.getTime();
    const [[schema]] = (await db.raw(
      'SELECT (SELECT name FROM knex_migrations ORDER BY id DESC LIMIT 1) AS latest, (SELECT COUNT(*) FROM knex_migrations) AS n',
    )) as unknown as [[{ latest: string | null; n: number | string }]];
    const [runners] = (await db.raw(
      `SELECT instance, host, pid, queue, concurrency, running, version, started_at, seen_at, period_ms
         FROM runners WHERE seen_at > UTC_TIMESTAMP(3) - INTERVAL ${SHOWN_FOR} ORDER BY seen_at DESC LIMIT 500`,
    )) as unknown as [Array<Omit<RunnerLine, 'silent'>>];
    const [injectors] = (await db.raw(
      `SELECT claimant, version, started_at, cycle_at, lag_ms, claimed
         FROM injectors WHERE cycle_at > UTC_TIMESTAMP(3) - INTERVAL ${SHOWN_FOR} ORDER BY claimant LIMIT 100`,
    )) as unknown as [Array<Omit<InjectorLine, 'silent'>>];
    const [[lost]] = (await db.raw(
      `SELECT COUNT(*) AS n FROM runs WHERE status = 'lost' AND finished_at > UTC_TIMESTAMP(3) - INTERVAL ${SHOWN_FOR}`,
    )) as unknown as [[{ n: number | string }]];
    return {
      database: { ok: true, now: clock.now },
      schema: { latest: schema.latest, count: Number(schema.n) },
      // The 500 heard from last (idx_runners_seen, whatever the table holds), shown by queue and host.
      runners: [...runners].sort(byQueueHost).map((r) => ({
        ...r,
        silent: now - r.seen_at.getTime() > r.period_ms * SILENT_AFTER_PERIODS,
      })),
      injectors: injectors.map((i) => ({
        ...i,
        silent: now - i.cycle_at.getTime() > INJECTOR_SILENT_MS,
      })),
      lostToday: Number(lost.n),
    };
  } catch (err) {
    return unreachable(errorMessage(err));
  }
}

function byQueueHost(a: { queue: string; host: string; pid: number }, b: typeof a): number {
  return a.queue.localeCompare(b.queue) || a.host.localeCompare(b.host) || a.pid - b.pid;
}
