/**
 * Helpers for the runner's tests: publish job messages to a test vhost and
 * collect what arrives on its `cronq_results` queue (the runner's output),
 * reconnecting by itself when a disruptive test restarts the broker.
 */
import { randomBytes } from 'node:crypto';
import amqp, { type ChannelModel, type ConfirmChannel } from 'amqplib';
import type { ResultMessage } from '../../src/core/messages';
import {
  declareCore,
  declareJobQueue,
  routingKeyForQueue,
  EXCHANGE,
  RESULTS_QUEUE,
} from '../../src/core/topology';
import { waitFor } from './services';

export function runId(): string {
  return randomBytes(16).toString('hex');
}

export interface JobSpec {
  command: string;
  name?: string;
  jobId?: number;
  runId?: string;
  timeout?: number | null;
}

export function jobMessage(spec: JobSpec): Record<string, unknown> & { run_id: string } {
  const jobId = spec.jobId ?? 1;
  const command = spec.command;
  return {
    run_id: spec.runId ?? runId(),
    job_id: jobId,
    id: jobId,
    name: spec.name ?? `job ${jobId}`,
    cmd: command,
    command,
    timeout: spec.timeout ?? null,
  };
}

/** Results of one vhost, read from cronq_results with a consumer that survives broker restarts. */
export class ResultsCollector {
  readonly results: ResultMessage[] = [];
  private conn: ChannelModel | undefined;
  private closed = false;
  private connecting: Promise<void> | undefined;

  constructor(private readonly url: string) {}

  async start(): Promise<void> {
    await this.connect();
  }

  private async connect(): Promise<void> {
    for (;;) {
      if (this.closed) return;
      try {
        const conn = await amqp.connect(this.url);
        conn.on('error', () => undefined);
        conn.on('close', () => {
          this.conn = undefined;
          if (!this.closed) this.connecting = this.connect();
        });
        const ch = await conn.createChannel();
        await declareCore(ch);
        await ch.consume(RESULTS_QUEUE, (m) => {
          if (!m) return;
          this.results.push(JSON.parse(m.content.toString('utf8')) as ResultMessage);
          ch.ack(m);
        });
        this.conn = conn;
        return;
      } catch {
        await new Promise((r) => setTimeout(r, 300));
      }
    }
  }

  forRun(runId: string, type?: ResultMessage['type']): ResultMessage[] {
    return this.results.filter(
      (r) => r.run_id === runId && (type === undefined || r.type === type),
    );
  }

  /** The run's final result (`finished` or `failed`), waiting for it. */
  async final(runId: string, timeoutMs = 15_000): Promise<ResultMessage> {
    return waitFor(
      () =>
        this.results.find(
          (r) => r.run_id === runId && (r.type === 'finished' || r.type === 'failed'),
        ),
      {
        timeoutMs,
        message: `final result of run ${runId}`,
      },
    );
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.connecting;
    await this.conn?.close().catch(() => undefined);
  }
}

/** Publishes job messages to a queue's routing key with confirms (declaring the topology first). */
export class JobPublisher {
  private conn: ChannelModel | undefined;
  private ch: ConfirmChannel | undefined;

  constructor(private readonly url: string) {}

  private async channel(): Promise<ConfirmChannel> {
    if (this.ch) return this.ch;
    const conn = await amqp.connect(this.url);
    conn.on('error', () => undefined);
    conn.on('close', () => {
      this.conn = undefined;
      this.ch = undefined;
    });
    const ch = await conn.createConfirmChannel();
    ch.on('error', () => undefined);
    this.conn = conn;
    this.ch = ch;
    return ch;
  }

  async declare(queue: string): Promise<void> {
    const ch = await this.channel();
    await declareCore(ch);
    await declareJobQueue(ch, queue);
  }

  async publish(queue: string, body: unknown): Promise<void> {
    await this.declare(queue);
    const ch = await this.channel();
    const content = Buffer.isBuffer(body)
      ? body
      : Buffer.from(typeof body === 'string' ? body : JSON.stringify(body));
    ch.publish(EXCHANGE, routingKeyForQueue(queue), content, { persistent: true });
    await ch.waitForConfirms();
  }

  /** Messages ready in a queue (not counting those delivered and unacked). */
  async ready(queue: string): Promise<number> {
    const ch = await this.channel();
    return (await ch.checkQueue(queue)).messageCount;
  }

  async close(): Promise<void> {
    await this.conn?.close().catch(() => undefined);
  }
}

/** True while a process with this pid exists. */
export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
