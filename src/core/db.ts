import path from 'node:path';
import knexFactory, { type Knex } from 'knex';
import type { DatabaseConfig } from './config';

export type { Knex };

export interface DbOptions {
  /** Largest number of pooled connections. */
  poolMax?: number;
  /** Connect without selecting a database (to create one). */
  withoutDatabase?: boolean;
  /**
   * Isolation level of every pooled session (default: the server's). Set
   * once per connection, so a transaction costs no extra round trip for it.
   */
  isolationLevel?: 'READ COMMITTED' | 'REPEATABLE READ';
}

/**
 * A knex instance on mysql2 that speaks UTC only: the driver turns DATETIME
 * values into Dates as UTC (`timezone: 'Z'`) and every pooled session runs
 * with `time_zone = '+00:00'`, so NOW() and stored times agree whatever TZ
 * the process or the server runs in.
 */
export function createDb(cfg: DatabaseConfig, opts: DbOptions = {}): Knex {
  return knexFactory({
    client: 'mysql2',
    connection: {
      host: cfg.host,
      port: cfg.port,
      user: cfg.user,
      password: cfg.password,
      database: opts.withoutDatabase ? undefined : cfg.database,
      timezone: 'Z',
      charset: cfg.params.charset ?? 'utf8mb4',
      supportBigNumbers: true,
      dateStrings: false,
      connectTimeout: 5000,
    },
    pool: {
      min: 0,
      max: opts.poolMax ?? 10,
      afterCreate(
        conn: { query: (sql: string, cb: (err: Error | null) => void) => void },
        done: (err: Error | null, c: unknown) => void,
      ) {
        conn.query("SET time_zone = '+00:00'", (err) => {
          if (err || !opts.isolationLevel) return done(err, conn);
          conn.query(`SET SESSION TRANSACTION ISOLATION LEVEL ${opts.isolationLevel}`, (e) =>
            done(e, conn),
          );
        });
      },
    },
    acquireConnectionTimeout: 10_000,
  });
}

/** Folder of the knex migrations, shipped beside dist/ in the package. */
export const MIGRATIONS_DIR = path.resolve(__dirname, '..', '..', 'migrations');

/**
 * Bring the schema up to date. Additive only: the first migration adopts an
 * existing Python-cronq database in place (it creates only what is missing),
 * later ones add tables and nullable columns. Safe to run from several
 * processes at once: knex serialises them with its migration lock.
 */
export async function migrate(db: Knex, timeoutMs = 60_000): Promise<string[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      await ensureMigrationTables(db);
      const [, applied] = (await db.migrate.latest({
        directory: MIGRATIONS_DIR,
        loadExtensions: ['.js'],
      })) as [number, string[]];
      return applied;
    } catch (err) {
      // Another process holds knex's migration lock, or created knex's own
      // bookkeeping tables (or their lock row, which can deadlock with it)
      // in the same instant (knex does not guard that race on an empty
      // database): wait a little and go again. Every step is idempotent.
      if (!isMigrationRace(err) || Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, 200 + Math.random() * 300));
    }
  }
}

/**
 * Create knex's bookkeeping tables and its single lock row before knex
 * looks for them. knex checks-then-creates, so several processes starting
 * on an empty database at once could each insert a lock row, after which
 * no one can ever take the lock; a fixed primary key and INSERT IGNORE make
 * the row exist exactly once. Same table shapes as knex's own.
 */
async function ensureMigrationTables(db: Knex): Promise<void> {
  await db.raw(
    'CREATE TABLE IF NOT EXISTS knex_migrations (id INT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY, name VARCHAR(255), batch INT, migration_time TIMESTAMP NULL) DEFAULT CHARACTER SET utf8mb4',
  );
  await db.raw(
    'CREATE TABLE IF NOT EXISTS knex_migrations_lock (`index` INT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY, is_locked INT) DEFAULT CHARACTER SET utf8mb4',
  );
  await db.raw(
    'INSERT IGNORE INTO knex_migrations_lock (`index`, is_locked) SELECT 1, 0 FROM DUAL WHERE NOT EXISTS (SELECT 1 FROM knex_migrations_lock)',
  );
}

function isMigrationRace(err: unknown): boolean {
  const e = err as { name?: string; code?: string; message?: string };
  if (e.name === 'MigrationLocked' || e.code === 'ER_LOCK_DEADLOCK') return true;
  return (
    (e.code === 'ER_TABLE_EXISTS_ERROR' || e.code === 'ER_DUP_ENTRY') &&
    /knex_migrations/.test(e.message ?? '')
  );
}

/** Create the configured database if it does not exist (used by `cronq dev` and tests). */
export async function ensureDatabase(cfg: DatabaseConfig): Promise<void> {
  const admin = createDb(cfg, { withoutDatabase: true, poolMax: 1 });
  try {
    await admin.raw(
      'CREATE DATABASE IF NOT EXISTS ?? CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci',
      [cfg.database],
    );
  } finally {
    await admin.destroy();
  }
}

/** The database clock, which decides what is due (not the process clock). */
export async function dbNow(db: Knex | Knex.Transaction): Promise<Date> {
  const [rows] = (await db.raw('SELECT UTC_TIMESTAMP(3) AS now')) as [Array<{ now: Date }>];
  return rows[0]!.now;
}

/** A UTC DATETIME(3) literal; cheaper than letting the driver convert thousands of Dates a batch. */
export function sqlTime(d: Date): string {
  return d.toISOString().slice(0, 23).replace('T', ' ');
}
