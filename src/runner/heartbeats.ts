import { clampDelay } from '../core/timers';
import type { ResultOutbox } from './result-outbox';
import { heartbeatResult, resultMessageId } from './result-messages';
import type { ActiveRun } from './slots';

/**
 * A `heartbeat` result for every running run, every `periodMs`: while they
 * come, the results side knows the run is alive; when they stop (the
 * runner died), it marks the run lost.
 */
export class Heartbeats {
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly opts: {
      periodMs: number;
      /** `x-host` of the results. */
      host: string;
      runs: () => Iterable<ActiveRun>;
      results: Pick<ResultOutbox, 'send'>;
    },
  ) {}

  start(): void {
    this.timer = setInterval(() => this.beat(), Math.max(1, clampDelay(this.opts.periodMs)));
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  private beat(): void {
    for (const run of this.opts.runs()) {
      if (!run.process) continue;
      run.heartbeats += 1;
      const msg = heartbeatResult({ job: run.job, host: this.opts.host, startTime: run.startTime });
      void this.opts.results.send(msg, resultMessageId(run.job.runId, 'heartbeat', run.heartbeats));
    }
  }
}
