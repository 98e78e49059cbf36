/**
 * What the injector tells whoever holds it, as typed events (Node's
 * EventEmitter<InjectorEvents>): tests wait for these instead of log lines,
 * and an embedding process can count or act on them. Every event is also
 * logged as before; the log text is for people, these are for code.
 *
 * Listeners run synchronously inside the injector's loop at the point
 * named, so a listener must be quick and must not throw. A test that wants
 * to "crash" the injector at one of the two outbox points (batch:committed,
 * batch:confirmed) kills the process from its listener: nothing after that
 * point has happened yet (test/helpers/injector-crash-entry.ts).
 */

/** A failure that is waited out: the database or the broker is away. */
export type OutageKind = 'database' | 'broker';

// A type, not an interface, so it fits EventEmitter's and EventMonitor's Record constraint.
export type InjectorEvents = {
  /** overlap replace: run `runId` is being killed, replaced by run `by`. */
  'run:replaced': [{ jobId: number; runId: string; by: string }];
  /** A wake order (*Run now*) came: the injector claims now instead of at its next poll. */
  wake: [];
  /** The injector's control queue is consumed (on start and after a reconnect). */
  'control:listening': [];
  /** One cycle ended: jobs claimed in it, and runs whose publish the broker confirmed since the last cycle. */
  'cycle:done': [{ claimed: number; published: number }];
  /** A cycle failed with something other than an outage; it is retried with backoff. */
  'cycle:failed': [{ error: Error }];
  /** The database or the broker went away (once per outage; the loop backs off and waits). */
  outage: [{ kind: OutageKind }];
  /** A cycle succeeded again after an outage or a failed cycle. */
  recovered: [{ after: OutageKind | 'error' }];
  /** A job's schedule could not be read: schedule_error is set and the job is set aside until it changes. */
  'schedule:error': [{ jobId: number; jobName: string; error: string }];
  /** The database's and this process's clocks differ by more than 1 s (once, until they agree again). */
  'clock:skew': [{ offsetMs: number }];
  /** The clocks agree again (within 0.5 s) after a clock:skew. */
  'clock:agreed': [{ offsetMs: number }];
  /**
   * Runs are committed in the outbox (claimed or retaken) and about to be
   * published: nothing of this batch has reached the broker yet.
   */
  'batch:committed': [{ runIds: string[]; republish: boolean }];
  /**
   * The broker answered for a batch (or the confirm timeout passed):
   * `confirmed` reached a queue; published_at is not written yet.
   * `lateMs[i]` is how long after its occurrence (scheduled_for, by the
   * database's clock) `confirmed[i]` was confirmed; below 0 when it went
   * out ahead of it (CRONQ_INJECTOR_LEAD_MS).
   */
  'batch:confirmed': [
    {
      confirmed: string[];
      lateMs: number[];
      unroutable: number;
      failed: number;
      republish: boolean;
    },
  ];
  /**
   * overlap forbid: a run (an occurrence, a catch-up run, a *Run now*) was
   * recorded `skipped` because `waitedFor`, the job's run, was not final.
   */
  'run:skipped': [
    {
      jobId: number;
      jobName: string;
      runId: string;
      scheduledFor: Date;
      waitedFor: string;
      reason: string;
    },
  ];
  /**
   * Occurrences were recorded as one `missed` run: past their
   * starting_deadline when claimed, or left over by catch_up skip or all.
   * `count` is how many occurrences the record stands for.
   */
  'run:missed': [
    {
      jobId: number;
      jobName: string;
      runId: string;
      scheduledFor: Date;
      count: number;
      reason: string;
    },
  ];
  /** Retry runs whose not_before had come were taken to publish (their first publish). */
  'retry:due': [{ runIds: string[] }];
  /** The loop ended after stop(); the batches in hand are recorded. */
  stopped: [{ claimedJobs: number; published: number; errors: number }];
};

/** The part of InjectorEvents the Dispatcher emits (the Injector passes them on). */
export type DispatcherEvents = Pick<InjectorEvents, 'batch:committed' | 'batch:confirmed'>;
