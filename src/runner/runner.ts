import { EventEmitter } from 'node:events';
import path from 'node:path';
import { ResilientConsumer, type AmqpConnection, type ConfirmPublisher } from '../core/amqp';
import type { Config } from '../core/config';
import type { Service } from '../core/lifecycle';
import { once } from '../core/lifecycle';
import type { Logger } from '../core/logger';
import type { MessageSigner } from '../core/signing';
import { declareDeadQueue, declareTopology } from '../core/topology';
import { ControlConsumer, RUNNER_CONTROL_BINDING } from '../core/control';
import { RunnerCounters } from './counters';
import type { HoldReason, RunnerEvents } from './events';
import { Execution } from './execution';
import { LiveOutput } from './live-output';
import { Heartbeats } from './heartbeats';
import { Intake } from './intake';
import { resolveLogDir } from './job-log';
import { JobLogFiles } from './job-log-files';
import { jobBaseEnv } from './job-env';
import { Launcher } from './launcher';
import { Killer, KilledRuns } from './kills';
import { JobGate } from './refused-jobs';
import { ResultOutbox } from './result-outbox';
import type { ResultMessage } from '../core/messages';
import { Slots } from './slots';

export interface RunnerDeps {
  config: Config['runner'];
  /** Sent as `x-host` with every result. */
  host: string;
  connection: AmqpConnection;
  publisher: ConfirmPublisher;
  logger: Logger;
  /** Environment the commands start from, less CronQ's settings (job-env.ts); default process.env. */
  env?: NodeJS.ProcessEnv;
  /** How long a delivery may wait for a free slot before it goes back to the queue for other runners. */
  holdMs?: number;
  /** How long stop() waits for unconfirmed results before spilling them to disk. */
  flushMs?: number;
  /** With CRONQ_MESSAGE_KEY: job messages must carry its signature, results get it (docs/security.md). */
  signer?: MessageSigner;
  /** CRONQ_MESSAGE_MAX_AGE_SECONDS in ms; with `signer`. */
  jobMaxAgeMs?: number;
}

/** Deliveries the prefetch allows beyond one per slot (see the consumer below). */
const LOOKAHEAD = 2;

/**
 * Consumes one job queue and runs each command. This class wires the parts
 * (each in its own file) and owns start and stop:
 *
 * - the channel is the ResilientConsumer's (src/core/amqp): it declares the
 *   topology on each channel, reopens it, and stops and starts consuming on
 *   a signal (`hold`/`release`): 'slots' when waiting deliveries had to go
 *   back to the queue, 'result-buffer' while the result outbox is over its
 *   byte limit;
 * - intake.ts: parse, signature gate, duplicates, then wait for a slot;
 * - slots.ts: the concurrency limit, waiting deliveries, their hold timer;
 * - execution.ts: prepare, start and complete a run;
 * - heartbeats.ts, result-outbox.ts: what the runner reports.
 *
 * Ack strategy (docs/runner.md): when a run starts, its `starting` result is
 * queued on the connection, then the delivery is acked, then the command is
 * released, in one turn of the event loop. From then on the run is tracked
 * by its results and heartbeats (kept until the broker confirms them), so no
 * delivery is held for the length of a job and RabbitMQ's consumer_timeout
 * (30 min by default) never closes the channel under a long job.
 *
 * Events: the Runner is an `EventEmitter<RunnerEvents>` (events.ts).
 */
export class Runner extends EventEmitter<RunnerEvents> implements Service {
  private readonly cfg: Config['runner'];
  private readonly log: Logger;
  private readonly counters = new RunnerCounters();
  private readonly launcher: Launcher;
  private readonly gate: JobGate | undefined;
  private readonly consumer: ResilientConsumer;
  /** Orders for this runner on `cronq.control`: kill and watch (src/core/control). */
  readonly control: ControlConsumer;
  /** Watched runs' output to `cronq.output` (live-output.ts). */
  private readonly live: LiveOutput;
  private readonly slots: Slots;
  private readonly execution: Execution;
  private readonly heartbeats: Heartbeats;
  private readonly killer: Killer;
  private outbox: ResultOutbox | undefined;
  private logDir = '';
  private stopping = false;
  /** Run taken into a slot -> command released in its forked shell, and command exited -> `finished` confirmed (ms). */
  readonly startOverhead = this.counters.startOverhead;
  readonly finishOverhead = this.counters.finishOverhead;

  constructor(private readonly deps: RunnerDeps) {
    super();
    this.cfg = deps.config;
    this.log = deps.logger;
    this.launcher = new Launcher(
      jobBaseEnv(deps.env ?? process.env, this.cfg.jobEnvPass),
      this.log,
    );
    this.gate = deps.signer
      ? new JobGate(deps.signer, {
          queue: this.cfg.queue,
          maxAgeMs: deps.jobMaxAgeMs ?? 3_600_000,
          publisher: deps.publisher,
          logger: this.log,
        })
      : undefined;
    // Deliveries arrive only once start() has made the outbox.
    const results = {
      send: (msg: ResultMessage, id: string) => this.outbox!.send(msg, id),
    };
    this.slots = new Slots({
      concurrency: this.cfg.concurrency,
      holdMs: deps.holdMs ?? 2000,
      logger: this.log,
      events: this,
      blocked: () => this.outbox?.overLimit ?? false,
      start: (w) => this.execution.start(w),
      miss: (w, lateMs) => this.execution.miss(w, lateMs),
      prepare: (job) => this.execution.prepare(job),
      abandon: (p) => this.execution.abandon(p),
      hold: (reason) => this.hold(reason),
      release: (reason) => this.release(reason),
    });
    this.live = new LiveOutput(deps.connection, deps.publisher, this.log);
    this.execution = new Execution({
      live: this.live,
      cfg: this.cfg,
      host: deps.host,
      logger: this.log,
      launcher: this.launcher,
      logFiles: new JobLogFiles(this.cfg.jobLogMaxBytes, this.log),
      counters: this.counters,
      events: this,
      slots: this.slots,
      results,
      logDir: () => this.logDir,
    });
    this.heartbeats = new Heartbeats({
      periodMs: this.cfg.heartbeatMs,
      host: deps.host,
      runs: () => this.slots.active.values(),
      results,
    });
    this.killer = new Killer({
      slots: this.slots,
      execution: this.execution,
      killed: new KilledRuns(),
      counters: this.counters,
      events: this,
      logger: this.log,
    });
    const intake = new Intake({
      killer: this.killer,
      host: deps.host,
      logger: this.log,
      counters: this.counters,
      events: this,
      slots: this.slots,
      gate: this.gate,
      results,
      stopping: () => this.stopping,
    });
    this.consumer = new ResilientConsumer({
      connection: deps.connection,
      queue: this.cfg.queue,
      // Acked (started) runs do not count against the prefetch, hence the
      // runner's own limit (slots.ts): the prefetch bounds the deliveries
      // waiting for a slot. One per slot, plus LOOKAHEAD so that the next job
      // is already here (its shell forked) when a slot frees, instead of one
      // broker round trip after the last start's ack.
      prefetch: this.cfg.concurrency + LOOKAHEAD,
      logger: this.log,
      onDelivery: (d) => intake.take(d),
      declare: async (conn, ch) => {
        const { queueType, vhost } = deps.connection;
        await declareTopology(conn, { type: queueType, vhost, jobQueue: this.cfg.queue });
        if (this.gate) await declareDeadQueue(ch, this.gate.deadQueue, queueType);
      },
    });
    // The broker requeues every unacked delivery of a lost channel; forget the waiting ones.
    this.consumer.on('channelLost', () => this.slots.dropLost());
    this.consumer.on('consuming', () => this.emit('consumer:consuming'));
    this.consumer.on('idle', () => this.emit('consumer:idle'));
    this.control = new ControlConsumer({
      connection: deps.connection,
      logger: this.log,
      bindings: [RUNNER_CONTROL_BINDING],
    });
    this.control.on('control:watch', (w) => this.emit('control:watch', w));
    this.on('control:watch', (w) => this.live.watch(w));
    this.on('run:started', (r) => this.live.runStarted(r.runId));
    this.on('run:finished', (r) => this.live.runEnded(r.runId, r.status));
    this.on('run:could-not-start', (r) => this.live.runEnded(r.runId, 'failed'));
    this.control.on('control:kill', (k) => this.killer.kill(k));
    this.control.on('control:listening', () => this.emit('control:listening'));
  }

  async start(): Promise<void> {
    this.logDir = await resolveLogDir(this.cfg.logPath, this.log);
    const bufferDir = this.cfg.bufferPath || path.join(this.logDir, '.results-buffer');
    const outbox = new ResultOutbox(this.deps.publisher, this.deps.connection, {
      dir: bufferDir,
      maxBytes: this.cfg.bufferMaxBytes,
      logger: this.log,
      signer: this.deps.signer,
    });
    outbox.on('over-limit', () => void this.hold('result-buffer'));
    outbox.on('under-limit', () => {
      this.release('result-buffer');
      this.slots.schedule();
    });
    this.outbox = outbox;
    await outbox.start();
    await this.launcher.start();
    this.heartbeats.start();
    await this.live.start();
    await this.control.start();
    await this.consumer.start();
    this.log.info(
      { queue: this.cfg.queue, concurrency: this.cfg.concurrency, logDir: this.logDir, bufferDir },
      'runner started',
    );
  }

  /** The result outbox (its events: over/under its limit, spilled, recovered); set by start(). */
  get resultOutbox(): ResultOutbox | undefined {
    return this.outbox;
  }

  /** Runs holding a slot now. */
  get running(): number {
    return this.slots.active.size;
  }

  status(): Record<string, unknown> {
    const { startOverheadMs, finishOverheadMs, ...counts } = this.counters.summary();
    return {
      queue: this.cfg.queue,
      concurrency: this.cfg.concurrency,
      running: this.slots.active.size,
      waiting: this.slots.waitingCount,
      consuming: this.consumer.consuming,
      heldFor: this.consumer.heldFor,
      stopping: this.stopping,
      ...counts,
      ...this.gate?.status(),
      ...this.outbox?.status(),
      startOverheadMs,
      finishOverheadMs,
    };
  }

  private hold(reason: HoldReason): Promise<void> {
    if (this.consumer.heldFor.includes(reason)) return this.consumer.hold(reason);
    this.emit('consumer:held', { reason });
    return this.consumer.hold(reason);
  }

  private release(reason: HoldReason): void {
    if (!this.consumer.heldFor.includes(reason)) return;
    this.consumer.release(reason);
    this.emit('consumer:released', { reason });
  }

  /**
   * Stop taking jobs, let running ones finish for shutdownGraceMs, then
   * terminate them (process group: SIGTERM, SIGKILL after killGraceMs) and
   * report them as finished with reason "runner shutdown"; then flush results.
   */
  readonly stop = once(async () => {
    this.stopping = true;
    const { active } = this.slots;
    this.emit('runner:stopping', { running: active.size });
    this.slots.stop();
    // Given back once the consumer is cancelled, so they are not delivered here again.
    await this.consumer.stop();
    this.slots.returnWaiting('stopping');
    if (active.size > 0) {
      this.log.info(
        { running: active.size, graceMs: this.cfg.shutdownGraceMs },
        'waiting for running jobs to finish',
      );
      if (!(await this.slots.waitForRuns(this.cfg.shutdownGraceMs))) {
        this.log.warn({ running: active.size }, 'shutdown grace over: terminating running jobs');
        for (const run of active.values()) run.process?.terminate('shutdown');
        await this.slots.waitForRuns(this.cfg.killGraceMs + 2000, true);
      }
    }
    this.heartbeats.stop();
    await this.execution.closeLogs();
    if (this.outbox) {
      const drained = await this.outbox.flush(this.deps.flushMs ?? 5000);
      if (!drained)
        this.log.warn(
          { buffered: this.outbox.size },
          'broker did not confirm every result in time',
        );
      await this.outbox.stop();
    }
    await this.launcher.stop();
    await this.consumer.close();
    await this.control.stop();
    this.live.stop();
    this.log.info(this.counters.summary(), 'runner stopped');
    this.emit('runner:stopped');
  });

  /** A second signal: SIGKILL every running job's process group at once. */
  killAll(): void {
    for (const run of this.slots.active.values()) run.process?.killNow();
  }
}
