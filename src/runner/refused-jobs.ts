import type { ConfirmPublisher, ConsumeMessage, Delivery } from '../core/amqp';
import { errorMessage } from '../core/async';
import type { Logger } from '../core/logger';
import type { MessageSigner, RefusalReason } from '../core/signing';
import { DEAD_EXCHANGE, refusedJobQueue } from '../core/topology';

/**
 * The runner's gate for job messages when CRONQ_MESSAGE_KEY is set: a
 * message that is not signed by one of the keys, was signed for another
 * run, or was signed longer ago than the age limit never runs. It is moved
 * to `<queue>_dead` (acked only once the broker confirms the copy, so
 * nothing is lost), counted, and logged with the reason; never its body,
 * which came from someone who should not be sending.
 */
export class JobGate {
  readonly deadQueue: string;
  refused = 0;
  private readonly byReason: Partial<Record<RefusalReason, number>> = {};

  constructor(
    private readonly signer: MessageSigner,
    private readonly opts: {
      queue: string;
      maxAgeMs: number;
      publisher: ConfirmPublisher;
      logger: Logger;
    },
  ) {
    this.deadQueue = refusedJobQueue(opts.queue);
  }

  status(): Record<string, unknown> {
    return { refused: this.refused, refusedBy: { ...this.byReason } };
  }

  /** Why `msg` (whose body names `runId`) must not run, or undefined when it may. */
  check(msg: ConsumeMessage, runId: string): RefusalReason | undefined {
    // Symmetric window: a runner's clock behind the injector's by less than the limit still takes the job.
    return this.signer.verify('job', runId, msg.content, msg.properties.headers, {
      maxAgeMs: this.opts.maxAgeMs,
      maxFutureMs: this.opts.maxAgeMs,
    });
  }

  /** Count, log, and move the message to the dead queue; ack it once the copy is confirmed. */
  refuse(d: Delivery, runId: string, reason: RefusalReason): void {
    const { msg } = d;
    this.refused += 1;
    this.byReason[reason] = (this.byReason[reason] ?? 0) + 1;
    const p = msg.properties;
    this.opts.logger.warn(
      { reason, run_id: runId, queue: this.opts.queue, dead_queue: this.deadQueue },
      'refusing a job message that is not signed with our key; moved to the dead queue',
    );
    this.opts.publisher
      .publish(DEAD_EXCHANGE, this.deadQueue, msg.content, {
        persistent: true,
        contentType: p.contentType ? String(p.contentType) : 'application/json',
        ...(p.messageId ? { messageId: String(p.messageId) } : {}),
        headers: {
          ...(p.headers ?? {}),
          'x-cronq-dead-reason': `refused: ${reason}`,
          'x-cronq-dead-at': new Date().toISOString(),
        },
      })
      .then(
        () => d.ack(),
        (err: unknown) => {
          this.opts.logger.warn(
            { err: errorMessage(err), dead_queue: this.deadQueue },
            'could not move a refused job message to the dead queue; it goes back to the queue',
          );
          // Not at once: a dead queue that cannot be written would otherwise spin the delivery.
          setTimeout(() => d.nack(true), 1000).unref();
        },
      );
  }
}
