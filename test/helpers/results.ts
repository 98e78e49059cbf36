/**
 * Helpers for the results consumer's tests: publish result messages in the
 * runner's wire format (src/core/messages.ts) and set up jobs and runs rows
 * with plain SQL.
 */
import type { ChannelModel, ConfirmChannel } from 'amqplib';
import type { Knex } from '../../src/core/db';
import type { JobRow } from '../../src/core/jobs';
import { newRunId, type RunRow } from '../../src/core/runs';
import { EXCHANGE, RESULTS_QUEUE, RESULTS_ROUTING_KEY, declareCore } from '../../src/core/topology';

export type WireResult = Record<string, unknown>;

/** A result message as a runner sends it. */
export function resultMessage(
  type: 'starting' | 'finished' | 'failed' | 'heartbeat',
  jobId: number,
  runId: string,
  extra: Record<string, unknown> = {},
): WireResult {
  const now = new Date();
  return {
    job_id: jobId,
    run_id: runId,
    type,
    start_time: extra.start_time ?? now.toISOString(),
    'x-send-datetime': now.toISOString(),
    'x-host': 'host-a.example.com',
    ...(type === 'finished'
      ? { return_code: 0, run_time: 0.5, status: 'succeeded', output: 'done\n' }
      : {}),
    ...extra,
  };
}

export class ResultPublisher {
  private constructor(private readonly ch: ConfirmChannel) {}

  static async open(conn: ChannelModel): Promise<ResultPublisher> {
    const ch = await conn.createConfirmChannel();
    await declareCore(ch);
    return new ResultPublisher(ch);
  }

  /** Publish on the results route and wait for the broker's confirms. */
  async publish(...messages: Array<WireResult | string | Buffer>): Promise<void> {
    for (const m of messages) {
      const body = Buffer.isBuffer(m)
        ? m
        : Buffer.from(typeof m === 'string' ? m : JSON.stringify(m));
      this.ch.publish(EXCHANGE, RESULTS_ROUTING_KEY, body, {
        persistent: true,
        contentType: 'application/json',
      });
    }
    await this.ch.waitForConfirms();
  }

  /** Ready + unacknowledged messages of a queue. */
  async depth(queue = RESULTS_QUEUE): Promise<number> {
    const q = await this.ch.checkQueue(queue);
    return q.messageCount;
  }

  /** Consumers the broker has on a queue: a consumer counts once it takes messages. */
  async consumers(queue = RESULTS_QUEUE): Promise<number> {
    return (await this.ch.checkQueue(queue)).consumerCount;
  }

  /** Wait until `n` consumers take results (a consumer process is up and consuming). */
  async waitForConsumers(n = 1, timeoutMs = 40_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while ((await this.consumers()) < n) {
      if (Date.now() > deadline)
        throw new Error(`fewer than ${n} consumers of ${RESULTS_QUEUE} after ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  get channel(): ConfirmChannel {
    return this.ch;
  }
}

export async function insertJob(db: Knex, name: string): Promise<number> {
  const [id] = await db('jobs').insert({
    name,
    command: 'true',
    routing_key: 'default',
    schedule: 'R/2024-01-01T00:00:00Z/PT1H',
  });
  return Number(id);
}

export async function insertRun(
  db: Knex,
  jobId: number,
  opts: { runId?: string; scheduledFor?: Date; status?: string; queuedAt?: Date } = {},
): Promise<string> {
  const runId = opts.runId ?? newRunId();
  const at = opts.scheduledFor ?? new Date();
  await db('runs').insert({
    run_id: runId,
    job_id: jobId,
    job_name: `job-${jobId}`,
    scheduled_for: at,
    status: opts.status ?? 'queued',
    queued_at: opts.queuedAt ?? at,
    published_at: opts.queuedAt ?? at,
  });
  return runId;
}

export interface EventRow {
  id: number;
  job_id: number;
  datetime: Date;
  run_id: string;
  type: string;
  host: string;
  return_code: number | null;
  message_key: string | null;
}

export type JobStatusRow = JobRow & { current_run_for: Date | null; last_result_for: Date | null };

export async function runRow(db: Knex, runId: string): Promise<RunRow | undefined> {
  return db<RunRow>('runs').where({ run_id: runId }).first();
}

export async function jobRow(db: Knex, jobId: number): Promise<JobStatusRow | undefined> {
  return db<JobStatusRow>('jobs').where({ id: jobId }).first();
}

export async function eventsOf(db: Knex, runId: string): Promise<EventRow[]> {
  return db<EventRow>('events').where({ run_id: runId }).orderBy('id');
}

export { newRunId };
