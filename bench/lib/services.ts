/**
 * Isolated resources for one benchmark system: its own MariaDB database,
 * RabbitMQ vhost or PostgreSQL database, each dropped at teardown.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { promisify } from 'node:util';
import mysql from 'mysql2/promise';

const run = promisify(execFile);

export const MYSQL = {
  host: process.env.BENCH_MYSQL_HOST ?? '127.0.0.1',
  port: Number(process.env.BENCH_MYSQL_PORT ?? 3306),
  user: 'root',
};
export const AMQP_HOST = process.env.BENCH_AMQP_HOST ?? '127.0.0.1:5672';
export const PG = {
  host: process.env.BENCH_PG_HOST ?? '127.0.0.1',
  port: Number(process.env.BENCH_PG_PORT ?? 5432),
  user: process.env.BENCH_PG_USER ?? 'postgres',
};
export const REDIS_URL = process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379';

export function benchName(prefix: string): string {
  return `${prefix}_${Date.now().toString(36)}_${randomBytes(3).toString('hex')}`;
}

export async function createMysqlDatabase(name: string): Promise<string> {
  const c = await mysql.createConnection({ ...MYSQL });
  try {
    await c.query(`CREATE DATABASE \`${name}\``);
  } finally {
    await c.end();
  }
  return `mysql://root@${MYSQL.host}:${MYSQL.port}/${name}`;
}

export async function dropMysqlDatabase(name: string): Promise<void> {
  const c = await mysql.createConnection({ ...MYSQL });
  try {
    await c.query(`DROP DATABASE IF EXISTS \`${name}\``);
  } finally {
    await c.end();
  }
}

/** rabbitmqctl, retried for up to two minutes while the broker app is restarting. */
async function rabbitmqctl(args: string[]): Promise<void> {
  const deadline = Date.now() + 120_000;
  for (;;) {
    try {
      await run('rabbitmqctl', args, { timeout: 60_000 });
      return;
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, 2000));
    }
  }
}

export async function createVhost(name: string): Promise<string> {
  await rabbitmqctl(['add_vhost', name]).catch(async (err) => {
    // A retried add_vhost may find the vhost made by the attempt that timed out.
    if (!/already exists/.test(String(err))) throw err;
  });
  await rabbitmqctl(['set_permissions', '-p', name, 'guest', '.*', '.*', '.*']);
  return `amqp://guest:guest@${AMQP_HOST}/${name}`;
}

export async function deleteVhost(name: string): Promise<void> {
  await rabbitmqctl(['delete_vhost', name]).catch(() => undefined);
}

export async function createPgDatabase(name: string): Promise<string> {
  await run('createdb', ['-h', PG.host, '-p', String(PG.port), '-U', PG.user, name], {
    timeout: 60_000,
  });
  return `postgres://${PG.user}@${PG.host}:${PG.port}/${name}`;
}

export async function dropPgDatabase(name: string): Promise<void> {
  await run(
    'dropdb',
    ['--if-exists', '--force', '-h', PG.host, '-p', String(PG.port), '-U', PG.user, name],
    { timeout: 60_000 },
  ).catch(() => undefined);
}
