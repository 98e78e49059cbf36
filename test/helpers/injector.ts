/**
 * Fixtures for the injector's tests: jobs written straight into the
 * database (as the web would), the broker's job queues declared, and the
 * published job messages drained from them.
 */
import type { Channel, ChannelModel } from 'amqplib';
import type { Knex } from '../../src/core/db';
import { EXCHANGE } from '../../src/core/topology';
import { startCommand, type Proc } from './processes';
import type { TestDatabase, TestVhost } from './services';

export interface JobSpec {
  name: string;
  schedule: string | null;
  nextRun: Date | null;
  command?: string;
  routingKey?: string;
  runNow?: boolean;
  timeout?: number | null;
}

/** Insert jobs into one category (created if needed); returns their ids in order. */
export async function insertJobs(
  db: Knex,
  specs: JobSpec[],
  category = 'injector-tests',
): Promise<number[]> {
  await db.raw('INSERT IGNORE INTO categories (name) VALUES (?)', [category]);
  const [{ id: categoryId }] = (await db('categories')
    .where({ name: category })
    .select('id')) as Array<{ id: number }>;
  const ids: number[] = [];
  for (let i = 0; i < specs.length; i += 500) {
    const chunk = specs.slice(i, i + 500);
    const rows = chunk.map((s) => ({
      name: s.name,
      category_id: categoryId,
      command: s.command ?? `echo ${s.name}`,
      routing_key: s.routingKey ?? 'default',
      schedule: s.schedule,
      next_run: s.nextRun,
      run_now: s.runNow ? 1 : 0,
      timeout: s.timeout ?? null,
    }));
    await db('jobs').insert(rows);
    const names = chunk.map((s) => s.name);
    const got = (await db('jobs')
      .where({ category_id: categoryId })
      .whereIn('name', names)
      .select('id', 'name')) as Array<{ id: number; name: string }>;
    const byName = new Map(got.map((r) => [r.name, r.id]));
    for (const n of names) ids.push(byName.get(n)!);
  }
  return ids;
}

/** A whole second at least `leadMs` from now, as ISO schedule starts like. */
export function nextWholeSecond(leadMs = 1000): Date {
  return new Date(Math.ceil((Date.now() + leadMs) / 1000) * 1000);
}

/** Declare the exchange and a durable queue bound to `routingKey`, as a runner would. */
export async function bindQueue(ch: Channel, queue: string, routingKey: string): Promise<void> {
  await ch.assertExchange(EXCHANGE, 'direct', { durable: true });
  await ch.assertQueue(queue, { durable: true });
  await ch.bindQueue(queue, EXCHANGE, routingKey);
}

/** Open a connection to the vhost with `cronq_jobs` bound to `default`, as a default runner leaves it. */
export async function connectWithJobQueue(vh: TestVhost): Promise<ChannelModel> {
  const conn = await vh.connect();
  const ch = await conn.createChannel();
  await bindQueue(ch, 'cronq_jobs', 'default');
  await ch.close();
  return conn;
}

/** Start a real `cronq-injector` on the test database and vhost, and wait until it is running. */
export async function startInjector(
  tdb: TestDatabase,
  vh: TestVhost,
  env: Record<string, string> = {},
): Promise<Proc> {
  const p = startCommand('cronq-injector', {
    env: { DATABASE_URL: tdb.url, RABBITMQ_URL: vh.url, CRONQ_LOG_LEVEL: 'info', ...env },
  });
  await p.waitForLine('injector running', 30_000);
  return p;
}

export interface ReceivedJob {
  run_id: string;
  job_id: number;
  id: number;
  cmd: string;
  command: string;
  name: string;
  scheduled_for: string;
  trigger: string;
  messageId: string | undefined;
}

/** Take every message currently in `queue` (acked), parsed. */
export async function drainQueue(conn: ChannelModel, queue: string): Promise<ReceivedJob[]> {
  const ch = await conn.createChannel();
  const out: ReceivedJob[] = [];
  try {
    for (;;) {
      const m = await ch.get(queue, { noAck: true });
      if (m === false) break;
      out.push({
        ...(JSON.parse(m.content.toString('utf8')) as ReceivedJob),
        messageId: m.properties.messageId as string | undefined,
      });
    }
  } finally {
    await ch.close().catch(() => undefined);
  }
  return out;
}

export interface RunRowLite {
  run_id: string;
  job_id: number;
  scheduled_for: Date;
  triggered_by: string;
  status: string;
  reason: string | null;
  missed: number;
  published_at: Date | null;
  queued_at: Date;
  claimed_by: string | null;
}

export async function runsOf(db: Knex): Promise<RunRowLite[]> {
  return (await db('runs')
    .select(
      'run_id',
      'job_id',
      'scheduled_for',
      'triggered_by',
      'status',
      'reason',
      'missed',
      'published_at',
      'queued_at',
      'claimed_by',
    )
    .orderBy(['job_id', 'scheduled_for'])) as RunRowLite[];
}

/**
 * For a PTnS job, check that its runs (by scheduled_for) and the
 * occurrences they skipped (`missed`) tile the schedule with no gap and no
 * overlap: every occurrence from the first run on is either a run or
 * counted as missed by the run before it. Returns the problems found.
 */
export function scheduleGaps(runs: RunRowLite[], periodMs: number): string[] {
  const problems: string[] = [];
  const byJob = new Map<number, RunRowLite[]>();
  for (const r of runs)
    if (r.triggered_by === 'schedule') byJob.set(r.job_id, [...(byJob.get(r.job_id) ?? []), r]);
  for (const [job, list] of byJob) {
    list.sort((a, b) => a.scheduled_for.getTime() - b.scheduled_for.getTime());
    for (let i = 1; i < list.length; i++) {
      const prev = list[i - 1]!;
      const expected = prev.scheduled_for.getTime() + (prev.missed + 1) * periodMs;
      if (list[i]!.scheduled_for.getTime() !== expected) {
        problems.push(
          `job ${job}: run after ${prev.scheduled_for.toISOString()} (missed ${prev.missed}) is for ${list[i]!.scheduled_for.toISOString()}, expected ${new Date(expected).toISOString()}`,
        );
      }
    }
  }
  return problems;
}
