/**
 * What the runner and its result outbox announce, as typed events (Node's
 * `EventEmitter<Map>`). `Runner` is itself an `EventEmitter<RunnerEvents>`
 * and `ResultOutbox` an `EventEmitter<OutboxEvents>`: tests and the
 * daemon's own wiring listen to these instead of reading log lines. The
 * log says the same things for people; these say them for code.
 * (Type aliases, not interfaces: an event map must be indexable by name.)
 */
import type { FinishStatus } from '../core/messages';
import type { RefusalReason } from '../core/signing';
import type { WatchOrder } from '../core/control';

/** Why the runner stopped taking deliveries: every slot was busy, or the result buffer is over its limit. */
export type HoldReason = 'slots' | 'result-buffer';

export interface RunRef {
  runId: string;
  jobId: number;
}

export type RunnerEvents = {
  /** A delivery was taken to run: it waits for a slot, and for `notBefore` (epoch ms; 0 = now). */
  'delivery:taken': [RunRef & { notBefore: number }];
  /** Malformed, or it tripped the intake: rejected without requeue (never comes back). `runId` when the body had one. */
  'delivery:poison': [{ runId?: string; error: string }];
  /** Refused by the signing gate (CRONQ_MESSAGE_KEY): moved to the dead queue, never run. */
  'delivery:refused': [RunRef & { reason: RefusalReason }];
  /** A run this runner already took, delivered again: acked without running it. */
  'delivery:duplicate': [RunRef];
  /**
   * A waiting delivery left this runner unrun: `hold` (it waited `holdMs`
   * for a slot), `stopping`, or `lost` (its channel closed; the broker
   * requeued it).
   */
  'delivery:returned': [RunRef & { why: 'hold' | 'stopping' | 'lost' }];
  /** The run took a slot, `starting` is queued, the delivery acked and the command released. */
  'run:started': [RunRef & { startTime: Date }];
  /** The command is running in its forked shell, `spawnMs` after the run took its slot. */
  'run:released': [RunRef & { spawnMs: number }];
  /** The command ended; its `finished` result is queued. */
  'run:finished': [
    RunRef & { status: FinishStatus; returnCode: number | null; reason: string | undefined },
  ];
  /**
   * Not run: its starting deadline (`startBy`, epoch ms) had passed when it
   * would have taken a slot, `lateMs` ago. A `finished` result with status
   * `missed` is queued and the delivery acked.
   */
  'run:missed': [RunRef & { startBy: number; lateMs: number }];
  /** Nothing ran (the shell or the job log could not be prepared, or the kernel refused the fork): reported `failed`. */
  'run:could-not-start': [RunRef & { error: string }];
  /** A kill order reached the run in its slot: SIGTERM is sent to its process group (SIGKILL after the grace). */
  'run:killing': [RunRef & { requestedBy: string }];
  /** A delivery of a run killed before it started (waiting here, or delivered after the order): not run, reported `killed`. */
  'delivery:killed': [RunRef & { requestedBy: string }];
  /** The broker has registered the consumer: deliveries flow (on start, after a reconnect, after a release). */
  'consumer:consuming': [];
  /** The consumer is cancelled (held, stopping, or by the broker): no new deliveries. */
  'consumer:idle': [];
  /** The runner stopped consuming for this reason. */
  'consumer:held': [{ reason: HoldReason }];
  /** The reason for a hold went away (consuming resumes when no other holds). */
  'consumer:released': [{ reason: HoldReason }];
  /**
   * A web process asks for the live output of `runId` until `until` (epoch
   * ms, at most WATCH_MAX_MS ahead). Announced for every watch order; the
   * listener checks whether this runner holds the run.
   */
  'control:watch': [WatchOrder];
  /** The runner's control queue is consumed (on start and after a reconnect). */
  'control:listening': [];
  /** stop() began: no new deliveries; `running` runs get the shutdown grace. */
  'runner:stopping': [{ running: number }];
  /** stop() is done: results flushed or spilled, channel closed. */
  'runner:stopped': [];
};

export type OutboxEvents = {
  /** The unconfirmed results passed the byte limit (after dropping what heartbeats it could). */
  'over-limit': [{ bytes: number; limit: number }];
  /** Back at or under the limit after being over it. */
  'under-limit': [{ bytes: number; limit: number }];
  /** On stop, results not confirmed in time were written to this spill file. */
  spilled: [{ file: string; results: number }];
  /** On start, a spill file of a runner no longer alive was taken over; its results are published first. */
  recovered: [{ file: string; results: number }];
  /** Every result of a recovered spill file is confirmed; the file is deleted. */
  'recovered:confirmed': [{ file: string }];
};
