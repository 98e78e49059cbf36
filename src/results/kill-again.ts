import { asError } from '../core/async';
import { killMessage, type ControlPublisher } from '../core/control';
import type { Logger } from '../core/logger';

/**
 * A run killed before it started is `killed` in the ledger, and every
 * runner alive then remembers the order (docs/runner.md, "Killing a run").
 * A runner started after the order does not know it and may take the
 * run's delivery and start it. cronq-results sees that (a start for a run
 * stored `killed`: store.ts, `startedAfterKill`) and sends the kill order
 * again, so the runner that started it ends it at once, as it would any
 * kill. Best effort, never in the way of storing results: with the broker
 * away the order is not sent, and the run's next heartbeat (every
 * CRONQ_HEARTBEAT_SECONDS while it runs) brings it up again; one run is
 * ordered at most every KILL_AGAIN_EVERY_MS.
 */
/** The same run is ordered again at most this often (its heartbeats come every few seconds). */
export const KILL_AGAIN_EVERY_MS = 5000;
/** Runs remembered for that (the oldest forgotten first). */
const REMEMBERED = 10_000;

export class KillAgain {
  private readonly sentAt = new Map<string, number>();

  constructor(
    private readonly control: ControlPublisher,
    private readonly logger: Logger,
    private readonly now: () => number = Date.now,
  ) {}

  send(runIds: readonly string[]): void {
    for (const runId of runIds) {
      const last = this.sentAt.get(runId);
      if (last !== undefined && this.now() - last < KILL_AGAIN_EVERY_MS) continue;
      this.sentAt.delete(runId);
      this.sentAt.set(runId, this.now());
      if (this.sentAt.size > REMEMBERED) this.sentAt.delete(this.sentAt.keys().next().value!);
      this.logger.warn(
        { run_id: runId },
        'a runner started a run killed before it started; sending the kill order again',
      );
      this.control
        .send(
          killMessage({
            runId,
            requestedBy: 'cronq-results',
            requestedAt: new Date(),
            reason: 'killed before it started (a runner that had not heard the order started it)',
          }),
        )
        .catch((err: unknown) =>
          this.logger.warn(
            { run_id: runId, err: asError(err).message },
            'could not send the kill order again; tried again with its next heartbeat',
          ),
        );
    }
  }
}
