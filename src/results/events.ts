import type { LostRun } from './lost';

/**
 * What the results consumer tells whoever listens (`ResultsService` is an
 * `EventEmitter<ResultsEvents>`): tests wait for these instead of log
 * lines, and `status()` counts them. Listeners run synchronously inside
 * the consumer and must not throw. (A type, not an interface, so it fits
 * EventMonitor's Record constraint in the tests.)
 */
export type ResultsEvents = {
  /** The broker has registered the consumer: results flow (again). */
  consuming: [];
  /**
   * A batch was written and COMMITted. `count` deliveries were in it,
   * `stored` of them reached the database (the rest were dead-lettered);
   * `acked` is false when the channel closed before the ack (the broker
   * redelivers them, and writing them again changes nothing). `ms` is
   * from the start of the write to the ack; `oldestAgeMs` how long before
   * the COMMIT the batch's oldest result was sent (its x-send-datetime, by
   * the runner's clock), null when none could be read.
   */
  'batch:stored': [
    { count: number; stored: number; acked: boolean; ms: number; oldestAgeMs: number | null },
  ];
  /**
   * A batch could not be written (the database does not take writes, or a
   * lock conflict outlasted its retries): after `retryInMs` (0 while
   * stopping) its `count` deliveries are handed back (nack, requeue).
   * `attempt` counts the failures in a row, from 0.
   */
  'batch:failed': [{ count: number; error: string; attempt: number; retryInMs: number }];
  /** The first batch stored after failures: writes work again. */
  'batch:recovered': [{ failures: number }];
  /** A message went to `cronq_results_dead` (the broker confirmed it) and is then acked with its batch. */
  'dead-lettered': [{ reason: string; refused: boolean }];
  /** A result not signed with CRONQ_MESSAGE_KEY; it is also dead-lettered. */
  refused: [{ reason: string }];
  /**
   * A run became final (failed, timed_out, or lost) and its job's retries
   * policy wrote `retryRunId`, attempt `attempt`, due at `notBefore` (the
   * database's clock), in the same transaction. Emitted after the COMMIT.
   */
  'retry:scheduled': [
    { runId: string; retryRunId: string; jobId: number; attempt: number; notBefore: Date },
  ];
  /** The lost-run sweep marked `count` silent runs lost. */
  'lost:marked': [{ count: number; runs: LostRun[] }];
  /** The lost-run sweep failed; it is tried again with backoff. */
  'lost:failed': [{ error: string; attempt: number }];
  /** stop() finished: everything in hand was written (or handed back), the channel is closed. */
  stopped: [ResultsCounts];
};

/** Totals since start, as `status()` and the `stopped` event report them. */
export interface ResultsCounts {
  stored: number;
  batches: number;
  deadLettered: number;
  /** Results not signed with CRONQ_MESSAGE_KEY (also counted in deadLettered). */
  refused: number;
  lostMarked: number;
  /** Retry runs written (by batches and by the lost-run sweep). */
  retriesScheduled: number;
  failedWrites: number;
}
