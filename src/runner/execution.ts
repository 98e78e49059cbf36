import type { EventEmitter } from 'node:events';
import path from 'node:path';
import { asError, errorMessage } from '../core/async';
import type { Config } from '../core/config';
import type { KillOrder } from '../core/control';
import type { Logger } from '../core/logger';
import type { JobToRun } from '../core/messages';
import type { RunnerCounters } from './counters';
import type { RunnerEvents } from './events';
import { JobLogWriter, type StreamName } from './job-log';
import type { JobLogFiles } from './job-log-files';
import { jobLogFileName } from './job-log-name';
import { runEnv } from './job-env';
import { JobProcess } from './job-process';
import type { Launcher } from './launcher';
import { clip } from './log-bounds';
import type { LiveOutput } from './live-output';
import { OutputTail } from './output-tail';
import type { ResultOutbox } from './result-outbox';
import {
  couldNotStartResult,
  finishedResult,
  killedBeforeStartResult,
  missedResult,
  resultMessageId,
  startingResult,
} from './result-messages';
import type { ActiveRun, Slots, Waiting } from './slots';

/** A run's job log and gated shell, ready before it has a slot. */
export interface Prepared {
  proc: JobProcess;
  /** The run's child logger (job_id, run_id). */
  log: Logger;
  jobLog: JobLogWriter;
  tail: OutputTail;
  timeoutSeconds: number | null;
}

export interface ExecutionOptions {
  cfg: Config['runner'];
  /** `x-host` of the results. */
  host: string;
  logger: Logger;
  launcher: Launcher;
  logFiles: JobLogFiles;
  counters: RunnerCounters;
  events: EventEmitter<RunnerEvents>;
  slots: Slots;
  results: Pick<ResultOutbox, 'send'>;
  /** The job-log folder (known once the runner has started). */
  logDir(): string;
  /** Live output of watched runs (live-output.ts); sees every chunk, sends only watched ones. */
  live?: Pick<LiveOutput, 'push'>;
}

/**
 * Running one job: prepare it (job log, gated shell), start it in its slot
 * (publish `starting`, ack, release the command), and complete it (report
 * `finished`, or `failed` when nothing could run).
 */
export class Execution {
  private readonly logsClosing = new Set<Promise<void>>();

  constructor(private readonly opts: ExecutionOptions) {}

  /** Open the job log and fork the gated shell (it runs nothing until `go`). */
  prepare(job: JobToRun): Prepared {
    const { cfg } = this.opts;
    const log = this.runLogger(job);
    const echo = cfg.logToStdout
      ? (stream: StreamName, line: string) => log.info({ stream, job_name: clip(job.name) }, line)
      : undefined;
    const jobLog = new JobLogWriter(
      path.join(this.opts.logDir(), jobLogFileName(job.name)),
      job.runId,
      log,
      echo,
      this.opts.logFiles,
    );
    const tail = new OutputTail(cfg.outputTailBytes);
    const timeoutSeconds =
      job.timeoutSeconds ?? (cfg.defaultTimeoutSeconds > 0 ? cfg.defaultTimeoutSeconds : null);
    const proc = new JobProcess(
      {
        command: job.command,
        env: runEnv(job, new Date()),
        timeoutMs: timeoutSeconds === null ? null : timeoutSeconds * 1000,
        killGraceMs: cfg.killGraceMs,
        onOutput: (stream, chunk) => {
          tail.push(chunk, stream);
          this.opts.live?.push(job.runId, chunk);
          return jobLog.write(stream, chunk);
        },
        drained: () => jobLog.drained(),
      },
      this.opts.launcher,
    );
    proc.start();
    return { proc, jobLog, tail, timeoutSeconds, log };
  }

  /**
   * Start a run, all in this turn of the event loop: publish its `starting`
   * result, ack the delivery, release the command. While the broker is up
   * the result is handed to the connection before the ack, and amqplib
   * writes both to the socket in the same pass; it stays in the outbox until
   * the broker confirms it (republished after a reconnect, spilled to disk
   * on stop), so an acked run leaves a start record. The confirm itself (a
   * disk write on the broker) is not waited for: see docs/runner.md.
   */
  start(w: Waiting): void {
    const { job } = w;
    if (!w.delivery.live) {
      // Its channel died while it waited: the broker has requeued it, maybe to
      // another runner. If the copy comes back here it is not "recent" and runs then.
      this.abandon(w.prepared);
      this.runLogger(job).warn(
        'delivery lost before it could be acked; leaving the job to its redelivery',
      );
      this.opts.events.emit('delivery:returned', {
        runId: job.runId,
        jobId: job.jobId,
        why: 'lost',
      });
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
    this.opts.slots.occupy(run);
    let prepared: Prepared;
    try {
      prepared = w.prepared ?? this.prepare(job);
    } catch (err) {
      this.couldNotPrepare(w, asError(err));
      this.opts.slots.free(run);
      endRun();
      return;
    }
    const { log } = prepared;
    void this.opts.results.send(
      startingResult({ job, host: this.opts.host, startTime: run.startTime }),
      resultMessageId(job.runId, 'starting'),
    );
    // From here on the run is at-most-once: acked before the command starts.
    w.delivery.ack();
    run.process = prepared.proc;
    prepared.proc.go();
    this.opts.counters.started += 1;
    this.opts.events.emit('run:started', {
      runId: job.runId,
      jobId: job.jobId,
      startTime: run.startTime,
    });
    void prepared.proc.released.then((hr) => {
      this.opts.counters.startOverhead.add(hr - run.takenHr);
      this.opts.events.emit('run:released', {
        runId: job.runId,
        jobId: job.jobId,
        spawnMs: hr - run.takenHr,
      });
    });
    log.debug({ command: clip(job.command) }, 'started');
    this.complete(run, prepared)
      .catch((err: unknown) =>
        log.error({ err: errorMessage(err) }, 'unexpected error while running a job'),
      )
      .finally(() => {
        this.opts.slots.free(run);
        endRun();
      });
  }

  /**
   * Its starting deadline passed before it could start (slots.ts decides,
   * when it would take a slot): it is not run. A `finished` result with
   * status `missed` goes out and the delivery is acked, like a start; its
   * shell, if forked, exits having run nothing.
   */
  miss(w: Waiting, lateMs: number): void {
    const { job } = w;
    this.abandon(w.prepared);
    if (!w.delivery.live) {
      // Back on the queue already: whoever takes it next finds it late too.
      this.opts.events.emit('delivery:returned', {
        runId: job.runId,
        jobId: job.jobId,
        why: 'lost',
      });
      return;
    }
    const result = missedResult(job, this.opts.host, lateMs);
    void this.opts.results.send(result, resultMessageId(job.runId, result.type));
    w.delivery.ack();
    this.opts.counters.missed += 1;
    this.runLogger(job).warn({ late_ms: lateMs }, result.reason);
    this.opts.events.emit('run:missed', {
      runId: job.runId,
      jobId: job.jobId,
      startBy: job.startBy ?? 0,
      lateMs,
    });
  }

  /**
   * A kill order came for this delivery before it started (kills.ts): it
   * is not run. A `finished` result with status `killed` goes out and the
   * delivery is acked; its shell, if forked, exits having run nothing.
   */
  refuseKilled(w: Pick<Waiting, 'job' | 'delivery' | 'prepared'>, order: KillOrder): void {
    const { job } = w;
    this.abandon(w.prepared);
    const ref = { runId: job.runId, jobId: job.jobId };
    if (!w.delivery.live) {
      // Back on the queue already: whoever takes it next is told (or the ledger says killed).
      this.opts.events.emit('delivery:returned', { ...ref, why: 'lost' });
      return;
    }
    const result = killedBeforeStartResult(job, this.opts.host, order);
    void this.opts.results.send(result, resultMessageId(job.runId, result.type));
    w.delivery.ack();
    this.runLogger(job).info(
      { requested_by: order.requestedBy },
      'killed before it started; not run',
    );
    this.opts.events.emit('delivery:killed', { ...ref, requestedBy: order.requestedBy });
  }

  /**
   * Preparing the run threw (nothing ran): the run is reported `failed` with
   * the reason and acked, like a command that could not start, and the
   * runner goes on with the next.
   */
  private couldNotPrepare(w: Waiting, err: Error): void {
    const { job } = w;
    this.opts.counters.couldNotStart += 1;
    this.runLogger(job).error({ err: clip(err.message) }, 'could not prepare the run');
    const result = couldNotStartResult(
      { job, host: this.opts.host, startTime: new Date() },
      new Error(clip(err.message)),
    );
    void this.opts.results.send(result, resultMessageId(job.runId, result.type));
    w.delivery.ack();
    this.opts.events.emit('run:could-not-start', {
      runId: job.runId,
      jobId: job.jobId,
      error: clip(err.message) ?? '',
    });
  }

  /** Wait for the command to end and publish `finished` (or `failed`). */
  private async complete(run: ActiveRun, p: Prepared): Promise<void> {
    const { job } = run;
    const { log } = p;
    const { counters, events } = this.opts;
    const common = { job, host: this.opts.host, startTime: run.startTime };
    const outcome = await p.proc.done;
    // The slot is free: release the next (already forked) run first, so its
    // command runs while this one is reported.
    this.opts.slots.free(run);
    this.trackLogClose(p.jobLog.end());
    let result;
    if (outcome.kind === 'spawn_error') {
      counters.couldNotStart += 1;
      result = couldNotStartResult(common, outcome.error);
      log.error({ err: clip(outcome.error?.message) }, 'command could not be started');
      events.emit('run:could-not-start', {
        runId: job.runId,
        jobId: job.jobId,
        error: clip(outcome.error?.message) ?? 'unknown error',
      });
    } else {
      result = finishedResult(common, outcome, p.tail, p.timeoutSeconds, run.kill);
      // The run itself went on; whoever reads its result learns the log file has none of it.
      if (p.jobLog.failure !== undefined && result.reason === undefined)
        result.reason = `job log not written: ${clip(p.jobLog.failure)}`;
      if (result.status === 'succeeded') counters.succeeded += 1;
      else if (result.status === 'timed_out') counters.timedOut += 1;
      else if (result.status === 'killed') counters.killed += 1;
      else counters.failed += 1;
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
      events.emit('run:finished', {
        runId: job.runId,
        jobId: job.jobId,
        status: result.status,
        returnCode: outcome.returnCode,
        reason: result.reason,
      });
    }
    const exitedHr = p.proc.exitedHr || performance.now();
    void this.opts.results
      .send(result, resultMessageId(job.runId, result.type))
      .then(() => counters.finishOverhead.add(performance.now() - exitedHr));
  }

  /** A prepared shell that will not run: it exits without running anything. */
  abandon(p: Prepared | undefined): void {
    if (!p) return;
    p.proc.abandon();
    this.trackLogClose(p.jobLog.end());
  }

  /** The slot frees without waiting for the log file to close; stop() waits for it. */
  private trackLogClose(closing: Promise<void>): void {
    this.logsClosing.add(closing);
    void closing.finally(() => this.logsClosing.delete(closing));
  }

  /** Resolves when every job log this runner opened is closed. */
  async closeLogs(): Promise<void> {
    await Promise.all(this.logsClosing);
  }

  private runLogger(job: JobToRun): Logger {
    return this.opts.logger.child({ job_id: job.jobId, run_id: job.runId });
  }
}
