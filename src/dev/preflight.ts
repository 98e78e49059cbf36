import { accessSync, constants, mkdirSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import amqp from 'amqplib';
import { connectUrl } from '../core/amqp';
import type { Config } from '../core/config';
import { ensureDatabase, createDb, migrate } from '../core/db';
import { errorMessage } from '../core/async';
import { CronqError } from '../core/errors';

/** The runner's job-log folder: LOG_PATH when set, else /var/log/cronq when writable, else a temp folder. */
export function devLogPath(env: NodeJS.ProcessEnv): string {
  if (env.LOG_PATH?.trim()) return env.LOG_PATH.trim();
  try {
    accessSync('/var/log/cronq', constants.W_OK);
    return '/var/log/cronq';
  } catch {
    const dir = path.join(os.tmpdir(), 'cronq-logs');
    mkdirSync(dir, { recursive: true });
    return dir;
  }
}

/** Create the database if missing and bring its schema up to date, with a hint when MariaDB is not there. */
export async function prepareDatabase(config: Config): Promise<void> {
  const where = `${config.database.host}:${config.database.port}`;
  try {
    await ensureDatabase(config.database);
    const db = createDb(config.database, { poolMax: 2 });
    try {
      await migrate(db);
    } finally {
      await db.destroy();
    }
  } catch (err) {
    throw new CronqError(
      `cannot prepare the database "${config.database.database}" at ${where}: ${errorMessage(err)} (is MariaDB/MySQL running? set DATABASE_URL)`,
      { cause: err },
    );
  }
}

/** Fail early, with a hint, when no broker of the list answers (the daemons would otherwise retry forever). */
export async function checkBroker(config: Config): Promise<void> {
  const errors: string[] = [];
  for (let i = 0; i < config.amqp.hosts.length; i += 1) {
    try {
      const conn = await amqp.connect(connectUrl(config.amqp, i), { timeout: 5000 });
      await conn.close();
      return;
    } catch (err) {
      const h = config.amqp.hosts[i]!;
      errors.push(`${h.hostname}:${h.port}: ${errorMessage(err)}`);
    }
  }
  throw new CronqError(
    `cannot reach RabbitMQ (vhost "${config.amqp.vhost}"): ${errors.join('; ')} (is RabbitMQ running? set RABBITMQ_URL)`,
  );
}

/** Poll the web's /_status until it answers 200 or `signal` aborts. */
export async function waitForWeb(
  url: string,
  signal: AbortSignal,
  timeoutMs = 60_000,
): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (!signal.aborted && Date.now() < deadline) {
    try {
      const res = await fetch(new URL('/_status', url), { signal: AbortSignal.timeout(2000) });
      if (res.ok) return true;
    } catch {
      // not up yet
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  return false;
}
