import { Samples } from './samples';

/** What the runner counts, for status() and its last log line. */
export class RunnerCounters {
  started = 0;
  succeeded = 0;
  failed = 0;
  timedOut = 0;
  couldNotStart = 0;
  poison = 0;
  /** Not started: their starting deadline had passed (recorded `missed`). */
  missed = 0;
  duplicates = 0;
  /** Ended or kept from starting by a kill order. */
  killed = 0;
  /** Run taken into a slot -> command released in its forked shell (ms). */
  readonly startOverhead = new Samples();
  /** Command exited -> its `finished` confirmed (ms). */
  readonly finishOverhead = new Samples();

  summary(): Record<string, unknown> {
    return {
      started: this.started,
      succeeded: this.succeeded,
      failed: this.failed,
      timedOut: this.timedOut,
      couldNotStart: this.couldNotStart,
      poison: this.poison,
      missed: this.missed,
      duplicates: this.duplicates,
      killed: this.killed,
      startOverheadMs: this.startOverhead.summary(),
      finishOverheadMs: this.finishOverhead.summary(),
    };
  }
}
