import path from 'node:path';
import type { Channel, ConsumeMessage } from 'amqplib';
import type { AmqpConnection, ChannelModel, ConfirmPublisher } from '../core/amqp';
import type { Config } from '../core/config';
import type { Service } from '../core/lifecycle';
import { once } from '../core/lifecycle';
import type { Logger } from '../core/logger';
import { MAX_LEAD_MS, parseJobMessage, type JobToRun } from '../core/messages';
import { isGenuineButUntimely, type MessageSigner } from '../core/signing';
import { declareDeadQueue, declareTopology } from '../core/topology';
import { clampDelay, setLongTimeout, type LongTimeout } from '../core/timers';
import { JobLogWriter, resolveLogDir, type StreamName } from './job-log';
import { JobLogFiles } from './job-log-files';
import { jobLogFileName } from './job-log-name';
import { jobBaseEnv, runEnv } from './job-env';
import { clip } from './log-bounds';
import { JobProcess } from './job-process';
import { Launcher } from './launcher';
import { OutputTail } from './output-tail';
import { RecentRuns } from './recent-runs';
import { JobGate } from './refused-jobs';
import { ResultOutbox } from './result-outbox';
import {
  couldNotStartResult,
  finishedResult,
  heartbeatResult,
  resultMessageId,
  startingResult,
} from './result-messages';
import { Samples } from './samples';

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

interface Delivery {
  job: JobToRun;
  msg: ConsumeMessage;
  ch: Channel;
  receivedAt: number;
  /** Epoch ms before which it must not start (its occurrence, when published ahead); 0 = now. */
  notBefore: number;
  /** Its gated shell, forked while the delivery waited for a slot (see preforkWaiting). */
  prepared?: Prepared;
}

interface ActiveRun {
  job: JobToRun;
  startTime: Date;
  /** performance.now() when the run took its slot. */
  takenHr: number;
  process: JobProcess | undefined;
  heartbeats: number;
  /** Settles when the run has ended and its last result is queued. */
  ended: Promise<void>;
}

/**
 * Consumes one job queue and runs each command.
 *
 * Ack strategy (docs/runner.md): when a run starts, its `starting` result is
 * queued on the connection, then the delivery is acked, then the command is
 * released, in one turn of the event loop. From then on the run is tracked
 * by its results and heartbeats (kept until the broker confirms them), so no
 * delivery is held for the length of a job and RabbitMQ's consumer_timeout
 * (30 min by default) never closes the channel under a long job. Because
 * acked deliveries no longer count against the prefetch, the runner enforces
 * its concurrency itself: a delivery that arrives while every slot is busy
 * waits at most `holdMs` (with its shell already forked, gated), then goes
 * back to the queue (for another runner) and this runner stops consuming
 * until a slot frees.
 */
export class Runner implements Service {
  private readonly cfg: Config['runner'];
  private readonly log: Logger;
  private readonly recent = new RecentRuns();
  private readonly active = new Map<string, ActiveRun>();
  private waiting: Delivery[] = [];
  private readonly logsClosing = new Set<Promise<void>>();
  /** Channels that have closed: a delivery on one of them can no longer be acked. */
  private readonly closedChannels = new WeakSet<Channel>();
  private channel: Channel | undefined;
  private channelConn: ChannelModel | undefined;
  private consumerTag: string | undefined;
  private consuming: Promise<void> | undefined;
  private paused = false;
  private stopping = false;
  private holdTimer: LongTimeout | undefined;
  /** Wakes schedule() when the earliest delivery published ahead of its occurrence comes due. */
  private dueTimer: LongTimeout | undefined;
  private dueAt = Infinity;
  private preforkQueued = false;
  private heartbeatTimer: NodeJS.Timeout | undefined;
  private outbox!: ResultOutbox;
  private logDir = '';
  private readonly holdMs: number;
  private readonly launcher: Launcher;
  private readonly logFiles: JobLogFiles;
  private readonly gate: JobGate | undefined;
  private readonly counts = {
    started: 0,
    succeeded: 0,
    failed: 0,
    timedOut: 0,
    couldNotStart: 0,
    poison: 0,
    duplicates: 0,
  };
  /** Run taken into a slot -> command released in its forked shell, and command exited -> `finished` confirmed (ms). */
  readonly startOverhead = new Samples();
  readonly finishOverhead = new Samples();

  constructor(private readonly deps: RunnerDeps) {
    this.cfg = deps.config;
    this.log = deps.logger;
    this.holdMs = deps.holdMs ?? 2000;
    this.logFiles = new JobLogFiles(this.cfg.jobLogMaxBytes, this.log);
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
  }

  async start(): Promise<void> {
    this.logDir = await resolveLogDir(this.cfg.logPath, this.log);
    const bufferDir = this.cfg.bufferPath || path.join(this.logDir, '.results-buffer');
    this.outbox = new ResultOutbox(this.deps.publisher, this.deps.connection, {
      dir: bufferDir,
      maxBytes: this.cfg.bufferMaxBytes,
      logger: this.log,
      signer: this.deps.signer,
    });
    await this.outbox.start();
    await this.launcher.start();
    this.heartbeatTimer = setInterval(
      () => this.sendHeartbeats(),
      Math.max(1, clampDelay(this.cfg.heartbeatMs)),
    );
    this.heartbeatTimer.unref();
    this.deps.connection.on('disconnected', () => this.onDisconnected());
    await this.deps.connection.onConnect((conn) => this.setupConsumer(conn));
    this.log.info(
      { queue: this.cfg.queue, concurrency: this.cfg.concurrency, logDir: this.logDir, bufferDir },
      'runner started',
    );
  }

  status(): Record<string, unknown> {
    return {
      queue: this.cfg.queue,
      concurrency: this.cfg.concurrency,
      running: this.active.size,
      waiting: this.waiting.length,
      consuming: this.consumerTag !== undefined,
      stopping: this.stopping,
      ...this.counts,
      ...this.gate?.status(),
      ...this.outbox?.status(),
      startOverheadMs: this.startOverhead.summary(),
      finishOverheadMs: this.finishOverhead.summary(),
    };
  }

  // ---- consuming -------------------------------------------------------

  private async setupConsumer(conn: ChannelModel): Promise<void> {
    const { queueType, vhost } = this.deps.connection;
    await declareTopology(conn, { type: queueType, vhost, jobQueue: this.cfg.queue });
    const ch = await conn.createChannel();
    ch.on('error', (err: Error) =>
      this.log.warn({ err: err.message }, 'AMQP consumer channel error'),
    );
    ch.on('close', () => {
      this.closedChannels.add(ch);
      this.onChannelClosed(ch, conn);
    });
    if (this.gate) await declareDeadQueue(ch, this.gate.deadQueue, queueType);
    // Acked (started) runs do not count against the prefetch, hence the
    // runner's own limit: the prefetch bounds the deliveries waiting for a
    // slot. One per slot, plus LOOKAHEAD so that the next job is already here
    // (its shell forked) when a slot frees, instead of one broker round trip
    // after the last start's ack.
    await ch.prefetch(this.cfg.concurrency + LOOKAHEAD);
    this.channel = ch;
    this.channelConn = conn;
    this.consumerTag = undefined;
    this.paused = false;
    if (!this.stopping && !this.isFull()) await this.consume();
    else this.paused = true;
  }

  private isFull(): boolean {
    return this.active.size >= this.cfg.concurrency || this.outbox.overLimit;
  }

  private consume(): Promise<void> {
    const ch = this.channel;
    if (!ch || this.consumerTag !== undefined || this.stopping) return Promise.resolve();
    this.consuming ??= ch
      .consume(this.cfg.queue, (msg) => this.onDelivery(msg, ch), { noAck: false })
      .then(
        (ok) => {
          if (this.channel === ch) this.consumerTag = ok.consumerTag;
          this.paused = false;
        },
        (err: Error) =>
          this.log.warn(
            { err: err.message },
            'could not start consuming; retrying on the next channel',
          ),
      )
      .finally(() => (this.consuming = undefined));
    return this.consuming;
  }

  private async pause(): Promise<void> {
    this.paused = true;
    await this.consuming;
    const ch = this.channel;
    const tag = this.consumerTag;
    this.consumerTag = undefined;
    if (ch && tag) await ch.cancel(tag).catch(() => undefined);
  }

  private resume(): void {
    if (this.paused && !this.stopping && !this.isFull() && this.channel) void this.consume();
  }

  private onDisconnected(): void {
    // The broker requeues every unacked delivery of a lost channel; forget ours.
    this.dropWaiting(() => true);
    this.channel = undefined;
    this.channelConn = undefined;
    this.consumerTag = undefined;
  }

  private onChannelClosed(ch: Channel, conn: ChannelModel): void {
    if (this.channel !== ch) return;
    this.channel = undefined;
    this.consumerTag = undefined;
    this.dropWaiting((d) => d.ch === ch);
    if (this.stopping) return;
    // A channel can close while the connection stays up (e.g. a broker-side
    // precondition such as consumer_timeout); open a new one on the same connection.
    const retry = (attempt: number) => {
      setTimeout(
        () => {
          if (this.stopping || this.channelConn !== conn || this.channel) return;
          this.setupConsumer(conn).catch((err: Error) => {
            this.log.warn(
              { err: err.message, attempt },
              'could not reopen the consumer channel; retrying',
            );
            if (attempt < 20) retry(attempt + 1);
          });
        },
        clampDelay(Math.min(5000, 100 * 2 ** attempt) * (0.5 + Math.random() / 2)),
      );
    };
    this.log.warn({ queue: this.cfg.queue }, 'consumer channel closed; reopening it');
    retry(0);
  }

  private onDelivery(msg: ConsumeMessage | null, ch: Channel): void {
    if (msg === null) {
      // The broker cancelled us (e.g. the queue was deleted): declare and consume again on a fresh channel.
      this.log.warn({ queue: this.cfg.queue }, 'consumer cancelled by the broker; reopening');
      this.consumerTag = undefined;
      ch.close().catch(() => undefined);
      return;
    }
    let job: JobToRun;
    try {
      job = parseJobMessage(msg.content);
    } catch (err) {
      // Rejected without requeue, so it is logged once and never comes back.
      this.counts.poison += 1;
      this.log.error(
        {
          err: clip((err as Error).message),
          body: msg.content.toString('utf8', 0, 200),
          redelivered: msg.fields.redelivered,
        },
        'rejecting a malformed job message',
      );
      safe(() => ch.nack(msg, false, false));
      return;
    }
    // Nothing past the parser may throw out of the consumer callback (it
    // would take the channel, and every delivery on it, down): a message
    // that trips anything before it is queued is set aside like a malformed one.
    try {
      const refusal = this.gate?.check(msg, job.runId);
      if (refusal !== undefined) {
        this.gate!.refuse(ch, msg, job.runId, refusal);
        // Genuine but too late (e.g. it waited out a runner outage): its run is real, so it is recorded as failed, with why.
        if (isGenuineButUntimely(refusal))
          void this.outbox.send(
            couldNotStartResult(
              { job, host: this.deps.host, startTime: new Date() },
              new Error(`job message ${refusal} (CRONQ_MESSAGE_MAX_AGE_SECONDS)`),
            ),
            resultMessageId(job.runId, 'failed'),
          );
        return;
      }
      if (
        this.active.has(job.runId) ||
        this.recent.has(job.runId) ||
        this.waiting.some((d) => d.job.runId === job.runId)
      ) {
        this.counts.duplicates += 1;
        this.log.info(
          { job_id: job.jobId, run_id: job.runId },
          'duplicate delivery of a run this runner already took; acking without running it again',
        );
        safe(() => ch.ack(msg));
        return;
      }
      if (this.stopping) {
        safe(() => ch.nack(msg, false, true));
        return;
      }
      const receivedAt = Date.now();
      // A scheduled run published ahead of its occurrence waits for it here,
      // its shell forked, and starts on the dot (never later than
      // MAX_LEAD_MS from now, whatever this host's clock says).
      const notBefore =
        job.notBefore !== null && job.notBefore > receivedAt
          ? Math.min(job.notBefore, receivedAt + MAX_LEAD_MS)
          : 0;
      this.waiting.push({ job, msg, ch, receivedAt, notBefore });
    } catch (err) {
      this.counts.poison += 1;
      this.log.error(
        { job_id: job.jobId, run_id: job.runId, err: clip((err as Error).message) },
        'rejecting a job message the runner could not take',
      );
      safe(() => ch.nack(msg, false, false));
      return;
    }
    // A run that cannot be prepared is reported by startRun (couldNotPrepare), not thrown.
    this.schedule();
  }

  /**
   * Start the waiting deliveries that are due, in arrival order, while slots
   * are free; wake again when the next early one comes due; bound how long
   * a due one may wait for a slot.
   */
  private schedule(): void {
    const now = Date.now();
    let nextDue = Infinity;
    let blocked = false;
    for (let i = 0; i < this.waiting.length && !this.stopping;) {
      const d = this.waiting[i]!;
      if (d.notBefore > now) {
        nextDue = Math.min(nextDue, d.notBefore);
        i += 1;
      } else if (this.isFull()) {
        blocked = true;
        i += 1;
      } else {
        this.waiting.splice(i, 1);
        this.startRun(d);
      }
    }
    this.armDueTimer(this.stopping ? Infinity : nextDue);
    if (!blocked) {
      this.holdTimer?.cancel();
      this.holdTimer = undefined;
      this.resume();
    } else if (!this.holdTimer) {
      this.holdTimer = setLongTimeout(() => this.releaseWaiting(), this.holdMs);
    }
    if (this.waiting.length > 0) this.preforkWaiting();
  }

  private armDueTimer(at: number): void {
    if (at === this.dueAt) return;
    this.dueTimer?.cancel();
    this.dueTimer = undefined;
    this.dueAt = at;
    if (at === Infinity) return;
    // `at` comes from a message's scheduled_for (bounded by MAX_LEAD_MS in
    // onDelivery); the safe timer still takes any value (NaN = now).
    this.dueTimer = setLongTimeout(() => {
      this.dueTimer = undefined;
      this.dueAt = Infinity;
      this.schedule();
    }, at - Date.now());
  }

  /**
   * Fork the gated shell of each delivery waiting for a slot, after the runs
   * just started have asked for theirs. The launcher thread forks it (about
   * a millisecond a child) while the slots' commands run, so no fork lies
   * between one run's end and the next run's start. A prepared shell runs
   * nothing until `go`, so a delivery given back to the queue costs only its
   * fork. At most one per prefetched delivery.
   */
  private preforkWaiting(): void {
    if (this.preforkQueued) return;
    this.preforkQueued = true;
    setImmediate(() => {
      this.preforkQueued = false;
      for (const d of this.waiting) {
        if (this.stopping) return;
        try {
          d.prepared ??= this.prepare(d.job);
        } catch {
          // startRun prepares it again and reports the failure as the run's result.
        }
      }
    });
  }

  /** Forget waiting deliveries (their channel is gone, or they go back to the queue); abandon their prepared shells. */
  private dropWaiting(which: (d: Delivery) => boolean): Delivery[] {
    const dropped = this.waiting.filter(which);
    if (dropped.length === 0) return dropped;
    this.waiting = this.waiting.filter((d) => !which(d));
    for (const d of dropped) this.abandonPrepared(d.prepared);
    return dropped;
  }

  private abandonPrepared(p: Prepared | undefined): void {
    if (!p) return;
    // The gated shell exits without running anything.
    p.proc.abandon();
    this.trackLogClose(p.jobLog.end());
  }

  private runLogger(job: JobToRun): Logger {
    return this.log.child({ job_id: job.jobId, run_id: job.runId });
  }

  /** Give every waiting delivery back to the queue (its shell, if forked, runs nothing). */
  private requeueWaiting(): Delivery[] {
    const held = this.dropWaiting(() => true);
    for (const d of held) safe(() => d.ch.nack(d.msg, false, true));
    return held;
  }

  /** Give held deliveries back to the queue and stop consuming until a slot frees. */
  private releaseWaiting(): void {
    this.holdTimer = undefined;
    const held = this.requeueWaiting();
    if (held.length > 0)
      this.log.debug(
        { released: held.length },
        'all slots busy: returned waiting jobs to the queue',
      );
    void this.pause().then(() => this.resume());
  }

  // ---- running ---------------------------------------------------------

  /**
   * Start a run, all in this turn of the event loop: publish its `starting`
   * result, ack the delivery, release the command. While the broker is up
   * the result is handed to the connection before the ack, and amqplib
   * writes both to the socket in the same pass; it stays in the outbox until
   * the broker confirms it (republished after a reconnect, spilled to disk
   * on stop), so an acked run leaves a start record. The confirm itself (a
   * disk write on the broker, ~2 ms) is not waited for: see docs/runner.md.
   */
  private startRun(d: Delivery): void {
    const { job } = d;
    if (this.closedChannels.has(d.ch)) {
      // Its channel died while it waited: the broker has requeued it, maybe to
      // another runner. If the copy comes back here it is not "recent" and runs then.
      this.abandonPrepared(d.prepared);
      this.runLogger(job).warn(
        'delivery lost before it could be acked; leaving the job to its redelivery',
      );
      return;
    }
    let endRun!: () => void;
    const run: ActiveRun = {
      job,
      startTime: new Date(),
      takenHr: performance.now(),
      process: undefined,
      heartbeats: 0,
      ended: new Promise((r) => (endRun = r)),
    };
    this.active.set(job.runId, run);
    this.recent.add(job.runId);
    let prepared: Prepared;
    try {
      prepared = d.prepared ?? this.prepare(job);
    } catch (err) {
      this.couldNotPrepare(d, err as Error);
      return;
    }
    const { log } = prepared;
    void this.outbox.send(
      startingResult({ job, host: this.deps.host, startTime: run.startTime }),
      resultMessageId(job.runId, 'starting'),
    );
    // From here on the run is at-most-once: acked before the command starts.
    safe(() => d.ch.ack(d.msg));
    run.process = prepared.proc;
    prepared.proc.go();
    this.counts.started += 1;
    void prepared.proc.released.then((hr) => this.startOverhead.add(hr - run.takenHr));
    log.debug({ command: clip(job.command) }, 'started');
    this.complete(run, prepared)
      .catch((err: Error) =>
        log.error({ err: err.message }, 'unexpected error while running a job'),
      )
      .finally(() => {
        this.freeSlot(run);
        endRun();
      });
  }

  /**
   * Preparing the run threw (nothing ran): the run is reported `failed` with
   * the reason and acked, like a command that could not start, and the
   * runner goes on with the next.
   */
  private couldNotPrepare(d: Delivery, err: Error): void {
    const { job } = d;
    this.recent.add(job.runId);
    this.counts.couldNotStart += 1;
    this.runLogger(job).error({ err: clip(err.message) }, 'could not prepare the run');
    const result = couldNotStartResult(
      { job, host: this.deps.host, startTime: new Date() },
      new Error(clip(err.message)),
    );
    void this.outbox.send(result, resultMessageId(job.runId, result.type));
    safe(() => d.ch.ack(d.msg));
  }

  /** Take the run out of its slot (once) and start what waits for it. */
  private freeSlot(run: ActiveRun): void {
    if (this.active.get(run.job.runId) !== run) return;
    this.active.delete(run.job.runId);
    this.schedule();
  }

  /** Open the job log and fork the gated shell (it runs nothing until `go`). */
  private prepare(job: JobToRun): Prepared {
    const log = this.runLogger(job);
    const echo = this.cfg.logToStdout
      ? (stream: StreamName, line: string) => log.info({ stream, job_name: clip(job.name) }, line)
      : undefined;
    const jobLog = new JobLogWriter(
      path.join(this.logDir, jobLogFileName(job.name)),
      job.runId,
      log,
      echo,
      this.logFiles,
    );
    const tail = new OutputTail(this.cfg.outputTailBytes);
    const timeoutSeconds =
      job.timeoutSeconds ??
      (this.cfg.defaultTimeoutSeconds > 0 ? this.cfg.defaultTimeoutSeconds : null);
    const proc = new JobProcess(
      {
        command: job.command,
        env: runEnv(job, new Date()),
        timeoutMs: timeoutSeconds === null ? null : timeoutSeconds * 1000,
        killGraceMs: this.cfg.killGraceMs,
        onOutput: (stream, chunk) => {
          tail.push(chunk);
          return jobLog.write(stream, chunk);
        },
        drained: () => jobLog.drained(),
      },
      this.launcher,
    );
    proc.start();
    return { proc, jobLog, tail, timeoutSeconds, log };
  }

  /** Wait for the command to end and publish `finished` (or `failed`). */
  private async complete(run: ActiveRun, p: Prepared): Promise<void> {
    const { job } = run;
    const { log } = p;
    const common = { job, host: this.deps.host, startTime: run.startTime };
    const outcome = await p.proc.done;
    // The slot is free: release the next (already forked) run first, so its
    // command runs while this one is reported.
    this.freeSlot(run);
    this.trackLogClose(p.jobLog.end());
    let result;
    if (outcome.kind === 'spawn_error') {
      this.counts.couldNotStart += 1;
      result = couldNotStartResult(common, outcome.error);
      log.error({ err: clip(outcome.error?.message) }, 'command could not be started');
    } else {
      result = finishedResult(common, outcome, p.tail.text(), p.timeoutSeconds);
      // The run itself went on; whoever reads its result learns the log file has none of it.
      if (p.jobLog.failure !== undefined && result.reason === undefined)
        result.reason = `job log not written: ${clip(p.jobLog.failure)}`;
      if (result.status === 'succeeded') this.counts.succeeded += 1;
      else if (result.status === 'timed_out') this.counts.timedOut += 1;
      else this.counts.failed += 1;
      log.info(
        {
          return_code: outcome.returnCode,
          status: result.status,
          run_time: result.run_time,
          reason: result.reason,
          lines: p.jobLog.lines,
        },
        'finished',
      );
    }
    const exitedHr = p.proc.exitedHr || performance.now();
    void this.outbox
      .send(result, resultMessageId(job.runId, result.type))
      .then(() => this.finishOverhead.add(performance.now() - exitedHr));
  }

  /** The slot frees without waiting for the log file to close; stop() waits for it. */
  private trackLogClose(closing: Promise<void>): void {
    this.logsClosing.add(closing);
    void closing.finally(() => this.logsClosing.delete(closing));
  }

  private sendHeartbeats(): void {
    // Also the moment to consume again if an over-full result buffer paused us and has drained.
    this.resume();
    for (const run of this.active.values()) {
      if (!run.process) continue;
      run.heartbeats += 1;
      const msg = heartbeatResult({ job: run.job, host: this.deps.host, startTime: run.startTime });
      void this.outbox.send(msg, resultMessageId(run.job.runId, 'heartbeat', run.heartbeats));
    }
  }

  // ---- stopping --------------------------------------------------------

  /**
   * Stop taking jobs, let running ones finish for shutdownGraceMs, then
   * terminate them (process group: SIGTERM, SIGKILL after killGraceMs) and
   * report them as finished with reason "runner shutdown"; then flush results.
   */
  readonly stop = once(async () => {
    this.stopping = true;
    this.holdTimer?.cancel();
    this.armDueTimer(Infinity);
    await this.pause().catch(() => undefined);
    this.requeueWaiting();
    if (this.active.size > 0) {
      this.log.info(
        { running: this.active.size, graceMs: this.cfg.shutdownGraceMs },
        'waiting for running jobs to finish',
      );
      if (!(await this.waitForRuns(this.cfg.shutdownGraceMs))) {
        this.log.warn(
          { running: this.active.size },
          'shutdown grace over: terminating running jobs',
        );
        for (const run of this.active.values()) run.process?.terminate('shutdown');
        await this.waitForRuns(this.cfg.killGraceMs + 2000, true);
      }
    }
    clearInterval(this.heartbeatTimer);
    await Promise.all(this.logsClosing);
    const drained = await this.outbox.flush(this.deps.flushMs ?? 5000);
    if (!drained)
      this.log.warn({ buffered: this.outbox.size }, 'broker did not confirm every result in time');
    await this.outbox.stop();
    await this.launcher.stop();
    const ch = this.channel;
    this.channel = undefined;
    if (ch) await ch.close().catch(() => undefined);
    this.log.info(
      {
        ...this.counts,
        startOverheadMs: this.startOverhead.summary(),
        finishOverheadMs: this.finishOverhead.summary(),
      },
      'runner stopped',
    );
  });

  /** Resolves true when no run is active, false after `ms`. Only spawned runs count when `spawnedOnly`. */
  private async waitForRuns(ms: number, spawnedOnly = false): Promise<boolean> {
    const runs = [...this.active.values()].filter((r) => !spawnedOnly || r.process);
    if (runs.length === 0) return true;
    let timer: LongTimeout | undefined;
    const all = Promise.all(runs.map((r) => r.ended)).then(() => true);
    const timeout = new Promise<boolean>(
      (resolve) => (timer = setLongTimeout(() => resolve(false), ms)),
    );
    const ok = await Promise.race([all, timeout]);
    timer?.cancel();
    return ok;
  }

  /** A second signal: SIGKILL every running job's process group at once. */
  killAll(): void {
    for (const run of this.active.values()) run.process?.killNow();
  }
}

interface Prepared {
  proc: JobProcess;
  /** The run's child logger (job_id, run_id). */
  log: Logger;
  jobLog: JobLogWriter;
  tail: OutputTail;
  timeoutSeconds: number | null;
}

/** Deliveries the prefetch allows beyond one per slot (see setupConsumer). */
const LOOKAHEAD = 2;

function safe(f: () => void): void {
  try {
    f();
  } catch {
    // The channel is gone; the broker requeues its unacked deliveries itself.
  }
}
