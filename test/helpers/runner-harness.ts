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
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before } from 'node:test';
import { createTestVhost, uniqueName, waitFor, type TestVhost } from './services';
import { startCommand, type Proc } from './processes';
import { EventMonitor } from './event-monitor';
import { AmqpConnection, ConfirmPublisher } from '../../src/core/amqp';
import { loadConfig, parseAmqpUrl, type Config } from '../../src/core/config';
import { silentLogger } from '../../src/core/logger';
import { Runner, type RunnerDeps, type RunnerEvents } from '../../src/runner';

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

  /** Consumers the broker has registered on a queue (a runner that stopped taking jobs has none). */
  async consumers(queue: string): Promise<number> {
    const ch = await this.channel();
    return (await ch.checkQueue(queue)).consumerCount;
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

/** What every runner test file sets up: its own vhost, a results collector, a job publisher, a job-log folder. */
export interface RunnerFixture {
  vhost: TestVhost;
  results: ResultsCollector;
  jobs: JobPublisher;
  logDir: string;
  procs: Proc[];
  /** Start a real `cronq-runner` on `queue` and wait until it is connected. */
  startRunner(queue: string, env?: Record<string, string>, args?: string[]): Promise<Proc>;
  /** Construct and start a `Runner` in this process on a new queue, recording its events. */
  startInProcess(opts?: InProcessOptions): Promise<InProcessRunner>;
}

export interface InProcessOptions {
  /** Settings as the environment gives them (CRONQ_CONCURRENCY, ...), over this fixture's defaults. */
  env?: Record<string, string>;
  /** Changes to the runner settings after they are read (values the environment bounds, e.g. a tiny buffer). */
  config?: Partial<Config['runner']>;
  holdMs?: number;
  flushMs?: number;
  /** Publisher of the results (default a ConfirmPublisher on the runner's connection). */
  publisher?: (connection: AmqpConnection) => ConfirmPublisher;
}

export interface InProcessRunner {
  runner: Runner;
  events: EventMonitor<RunnerEvents>;
  queue: string;
  connection: AmqpConnection;
  /** Stop the runner (once) and close its connection. */
  stop(): Promise<void>;
}

/**
 * Register the file's before/after hooks and return the fixture they fill
 * (read its fields inside tests, after `before` has run). `baseEnv` is
 * added to every runner this file starts.
 */
export function useRunnerFixture(baseEnv: Record<string, string> = {}): RunnerFixture {
  const fx = {
    logDir: mkdtempSync(path.join(os.tmpdir(), 'cronq-runner-test-')),
    procs: [] as Proc[],
    async startRunner(queue: string, env: Record<string, string> = {}, args: string[] = []) {
      await fx.jobs.declare(queue);
      const p = startCommand('cronq-runner', {
        env: { RABBITMQ_URL: fx.vhost.url, LOG_PATH: fx.logDir, ...baseEnv, ...env },
        args: ['--queue', queue, ...args],
      });
      fx.procs.push(p);
      await p.waitForLine('AMQP connected');
      return p;
    },
    async startInProcess(opts: InProcessOptions = {}) {
      const queue = uniqueName('qi');
      await fx.jobs.declare(queue);
      const env = {
        RABBITMQ_URL: fx.vhost.url,
        LOG_PATH: fx.logDir,
        CRONQ_QUEUE: queue,
        ...baseEnv,
        ...opts.env,
      };
      const config = { ...loadConfig(env).runner, ...opts.config };
      const logger = silentLogger();
      const connection = new AmqpConnection(parseAmqpUrl(fx.vhost.url), {
        logger,
        name: `runner-inprocess ${queue}`,
      });
      const publisher = opts.publisher?.(connection) ?? new ConfirmPublisher(connection, logger);
      const deps: RunnerDeps = {
        config,
        host: 'inprocess.example.com',
        connection,
        publisher,
        logger,
        holdMs: opts.holdMs,
        flushMs: opts.flushMs,
      };
      const runner = new Runner(deps);
      const events = new EventMonitor<RunnerEvents>(runner);
      await runner.start();
      connection.start();
      await events.waitFor('consumer:consuming');
      let stopped: Promise<void> | undefined;
      const r: InProcessRunner = {
        runner,
        events,
        queue,
        connection,
        stop: () =>
          (stopped ??= (async () => {
            await runner.stop();
            await publisher.close();
            await connection.close();
          })()),
      };
      fx.inProcess.push(r);
      return r;
    },
    inProcess: [] as InProcessRunner[],
  } as RunnerFixture & { inProcess: InProcessRunner[] };
  before(async () => {
    fx.vhost = await createTestVhost();
    fx.results = new ResultsCollector(fx.vhost.url);
    await fx.results.start();
    fx.jobs = new JobPublisher(fx.vhost.url);
  });
  after(async () => {
    await Promise.all(fx.inProcess.map((r) => r.stop()));
    await Promise.all(fx.procs.map((p) => p.stop(3000)));
    await fx.results.close();
    await fx.jobs.close();
    await fx.vhost.drop();
  });
  return fx;
}
