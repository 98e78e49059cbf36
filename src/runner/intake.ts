import type { EventEmitter } from 'node:events';
import type { Delivery } from '../core/amqp';
import { errorMessage } from '../core/async';
import type { Logger } from '../core/logger';
import { MAX_LEAD_MS, parseJobMessage, type JobToRun } from '../core/messages';
import { isGenuineButUntimely } from '../core/signing';
import type { RunnerCounters } from './counters';
import type { RunnerEvents } from './events';
import { clip } from './log-bounds';
import type { Killer } from './kills';
import type { JobGate } from './refused-jobs';
import type { ResultOutbox } from './result-outbox';
import { couldNotStartResult, resultMessageId } from './result-messages';
import type { Slots } from './slots';

export interface IntakeOptions {
  /** `x-host` of the results. */
  host: string;
  logger: Logger;
  counters: RunnerCounters;
  events: EventEmitter<RunnerEvents>;
  slots: Slots;
  /** With CRONQ_MESSAGE_KEY: the signature check (refused-jobs.ts). */
  gate: JobGate | undefined;
  results: Pick<ResultOutbox, 'send'>;
  /** Kill orders this runner was given: a delivery of such a run is not started. */
  killer: Pick<Killer, 'orderFor' | 'refuse'>;
  /** True once the runner is stopping: deliveries still arriving go back to the queue. */
  stopping(): boolean;
}

/**
 * What happens to each delivery before it waits for a slot: parse it
 * (poison is rejected without requeue), check its signature (refused ones
 * go to the dead queue), ack a run this runner already has without running
 * it again, hand it back while stopping, and note when it may start.
 */
export class Intake {
  constructor(private readonly opts: IntakeOptions) {}

  /** The consumer's onDelivery: never throws. */
  take(d: Delivery): void {
    const { msg } = d;
    const { counters, events, logger } = this.opts;
    let job: JobToRun;
    try {
      job = parseJobMessage(msg.content);
    } catch (err) {
      // Rejected without requeue, so it is logged once and never comes back.
      counters.poison += 1;
      logger.error(
        {
          err: clip(errorMessage(err)),
          body: msg.content.toString('utf8', 0, 200),
          redelivered: msg.fields.redelivered,
        },
        'rejecting a malformed job message',
      );
      d.nack(false);
      events.emit('delivery:poison', { error: clip(errorMessage(err)) ?? '' });
      return;
    }
    const ref = { runId: job.runId, jobId: job.jobId };
    // Nothing past the parser may throw out of the consumer callback (the
    // consumer would set the message aside without a word of why): a message
    // that trips anything before it is queued is set aside here, counted as poison.
    try {
      const { gate } = this.opts;
      const refusal = gate?.check(msg, job.runId);
      if (gate && refusal !== undefined) {
        gate.refuse(d, job.runId, refusal);
        // Genuine but too late (e.g. it waited out a runner outage): its run is real, so it is recorded as failed, with why.
        if (isGenuineButUntimely(refusal))
          void this.opts.results.send(
            couldNotStartResult(
              { job, host: this.opts.host, startTime: new Date() },
              new Error(`job message ${refusal} (CRONQ_MESSAGE_MAX_AGE_SECONDS)`),
            ),
            resultMessageId(job.runId, 'failed'),
          );
        events.emit('delivery:refused', { ...ref, reason: refusal });
        return;
      }
      const killed = this.opts.killer.orderFor(job.runId);
      if (killed && !this.opts.slots.active.has(job.runId)) {
        this.opts.killer.refuse({ job, delivery: d, receivedAt: Date.now(), notBefore: 0 }, killed);
        return;
      }
      if (this.opts.slots.has(job.runId)) {
        counters.duplicates += 1;
        logger.info(
          { job_id: job.jobId, run_id: job.runId },
          'duplicate delivery of a run this runner already took; acking without running it again',
        );
        d.ack();
        events.emit('delivery:duplicate', ref);
        return;
      }
      if (this.opts.stopping()) {
        d.nack(true);
        return;
      }
      const receivedAt = Date.now();
      // A scheduled run published ahead of its occurrence waits for it, its
      // shell forked, and starts on the dot (never later than MAX_LEAD_MS
      // from now, whatever this host's clock says).
      const notBefore =
        job.notBefore !== null && job.notBefore > receivedAt
          ? Math.min(job.notBefore, receivedAt + MAX_LEAD_MS)
          : 0;
      this.opts.slots.add({ job, delivery: d, receivedAt, notBefore });
    } catch (err) {
      counters.poison += 1;
      logger.error(
        { job_id: job.jobId, run_id: job.runId, err: clip(errorMessage(err)) },
        'rejecting a job message the runner could not take',
      );
      d.nack(false);
      events.emit('delivery:poison', { runId: job.runId, error: clip(errorMessage(err)) ?? '' });
      return;
    }
    // A run that cannot be prepared is reported by its start (could not start), not thrown.
    this.opts.slots.schedule();
  }
}
