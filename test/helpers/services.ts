/**
 * Test helpers for the real services: every test gets its own MariaDB
 * database and its own RabbitMQ vhost, created here and dropped after, so
 * test files can run side by side without seeing each other's rows or
 * messages.
 */
import { execFile } from 'node:child_process';
import { after, before } from 'node:test';
import { randomBytes } from 'node:crypto';
import { promisify } from 'node:util';
import amqp, { type ChannelModel } from 'amqplib';
import { asError, errorMessage } from '../../src/core/async';
import { createDb, ensureDatabase, migrate, type Knex } from '../../src/core/db';
import { parseDatabaseUrl } from '../../src/core/config';

const run = promisify(execFile);

export const MYSQL_HOST = process.env.CRONQ_TEST_MYSQL_HOST ?? '127.0.0.1';
export const MYSQL_PORT = Number(process.env.CRONQ_TEST_MYSQL_PORT ?? 3306);
export const AMQP_HOST = process.env.CRONQ_TEST_AMQP_HOST ?? '127.0.0.1';
export const AMQP_PORT = Number(process.env.CRONQ_TEST_AMQP_PORT ?? 5672);

export function uniqueName(prefix: string): string {
  return `${prefix}_${Date.now().toString(36)}_${randomBytes(3).toString('hex')}`;
}

export interface TestDatabase {
  name: string;
  /** DATABASE_URL for this database. */
  url: string;
  db: Knex;
  drop(): Promise<void>;
}

/** A fresh database, migrated unless `migrated: false`. */
export async function createTestDatabase(
  opts: { migrated?: boolean; poolMax?: number } = {},
): Promise<TestDatabase> {
  const name = uniqueName('cronq_t');
  const url = `mysql://root@${MYSQL_HOST}:${MYSQL_PORT}/${name}`;
  const cfg = parseDatabaseUrl(url);
  await ensureDatabase(cfg);
  const db = createDb(cfg, { poolMax: opts.poolMax ?? 5 });
  if (opts.migrated !== false) await migrate(db);
  return {
    name,
    url,
    db,
    async drop() {
      await db.destroy().catch(() => undefined);
      const admin = createDb(cfg, { withoutDatabase: true, poolMax: 1 });
      try {
        await admin.raw('DROP DATABASE IF EXISTS ??', [name]);
      } finally {
        await admin.destroy();
      }
    },
  };
}

export async function rabbitmqctl(...args: string[]): Promise<string> {
  const { stdout } = await run('rabbitmqctl', args, { timeout: 60_000 });
  return stdout;
}

/**
 * Messages of a queue as the broker counts them: `messages` is ready +
 * unacked (amqplib's checkQueue only counts ready ones); -1 when the queue
 * does not exist.
 */
export async function queueCounts(
  vhost: string,
  queue: string,
): Promise<{ messages: number; unacked: number }> {
  const out = await rabbitmqctl(
    'list_queues',
    '-p',
    vhost,
    '--no-table-headers',
    '--silent',
    'name',
    'messages',
    'messages_unacknowledged',
  );
  for (const line of out.split('\n')) {
    const [name, n, u] = line.trim().split(/\s+/);
    if (name === queue) return { messages: Number(n), unacked: Number(u) };
  }
  return { messages: -1, unacked: -1 };
}

export interface TestVhost {
  vhost: string;
  /** RABBITMQ_URL for this vhost. */
  url: string;
  /** A plain amqplib connection to the vhost, for the test's own looks at queues. */
  connect(): Promise<ChannelModel>;
  drop(): Promise<void>;
}

export async function createTestVhost(): Promise<TestVhost> {
  const vhost = uniqueName('cronq_t');
  await rabbitmqctl('add_vhost', vhost);
  await rabbitmqctl('set_permissions', '-p', vhost, 'guest', '.*', '.*', '.*');
  const url = `amqp://guest:guest@${AMQP_HOST}:${AMQP_PORT}/${vhost}`;
  const opened: ChannelModel[] = [];
  return {
    vhost,
    url,
    async connect() {
      const c = await amqp.connect(url);
      c.on('error', () => undefined);
      opened.push(c);
      return c;
    },
    async drop() {
      for (const c of opened) await c.close().catch(() => undefined);
      await rabbitmqctl('delete_vhost', vhost).catch(() => undefined);
    },
  };
}

/** Ensure the `cronq` database exists (for tests of `cronq dev`). */
export async function ensureNamedDatabase(url: string): Promise<void> {
  await ensureDatabase(parseDatabaseUrl(url));
}

/**
 * Wait until `check` returns a truthy value (returned), polling. A check
 * that throws is tried again (a server not listening yet, a row not written
 * yet), but if it is still throwing at the deadline, that error is what
 * fails the test (an assertion's diff, a query's error), with the wait
 * named in its message; a check that only ever returned falsy fails with
 * `message`.
 */
export async function waitFor<T>(
  check: () => Promise<T> | T,
  opts: { timeoutMs?: number; intervalMs?: number; message?: string } = {},
): Promise<NonNullable<T>> {
  const timeoutMs = opts.timeoutMs ?? 10_000;
  const deadline = Date.now() + timeoutMs;
  const what = opts.message ?? 'condition not met';
  let earlierErr: unknown;
  for (;;) {
    let threw: unknown;
    try {
      const v = await check();
      if (v) return v as NonNullable<T>;
    } catch (err) {
      threw = err;
      earlierErr = err;
    }
    if (Date.now() > deadline) {
      if (threw !== undefined) {
        const err = asError(threw);
        err.message = `${err.message}\n(waitFor: ${what}: the check still threw this after ${timeoutMs} ms)`;
        throw err;
      }
      const why = earlierErr === undefined ? '' : ` (earlier error: ${errorMessage(earlierErr)})`;
      throw new Error(`waitFor timed out after ${timeoutMs} ms: ${what}${why}`);
    }
    await new Promise((r) => setTimeout(r, opts.intervalMs ?? 50));
  }
}

/** A test file's own database and vhost (see useServices). */
export interface Services {
  readonly db: TestDatabase;
  readonly vhost: TestVhost;
  /** Stop `p` after the file's tests, before the database and vhost are dropped. */
  track<T extends { stop(): Promise<unknown> }>(p: T): T;
}

/**
 * Registers the hooks most test files start with: create a database and a
 * vhost of the file's own before its tests; after them, stop the processes
 * handed to `track` (in parallel), then drop both. node:test does not run a
 * file's top-level `before` hooks one after another, so setup that needs
 * the services belongs in a `describe`'s `before` or in the tests.
 */
export function useServices(): Services {
  let db: TestDatabase | undefined;
  let vhost: TestVhost | undefined;
  const tracked: Array<{ stop(): Promise<unknown> }> = [];
  before(async () => {
    [db, vhost] = await Promise.all([createTestDatabase(), createTestVhost()]);
  });
  after(async () => {
    await Promise.all(tracked.map((p) => p.stop()));
    await vhost?.drop();
    await db?.drop();
  });
  return {
    get db() {
      return db!;
    },
    get vhost() {
      return vhost!;
    },
    track(p) {
      tracked.push(p);
      return p;
    },
  };
}
