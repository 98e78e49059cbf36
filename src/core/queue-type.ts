import { ConfigError } from './errors';

/**
 * The two kinds of RabbitMQ queue CronQ can declare (CRONQ_QUEUE_TYPE).
 * Classic queues are declared with no arguments, as the original Python
 * cronq did, so a broker it set up is taken as it is. Quorum queues are
 * replicated over a cluster (Raft) and outlive the loss of a minority of
 * its nodes.
 */
export type QueueType = 'classic' | 'quorum';
export const QUEUE_TYPES: readonly QueueType[] = ['classic', 'quorum'];

/** Where a quorum queue's messages go once they pass their delivery limit (SPEC.md's dead-letter queue). */
export const DEAD_LETTER_QUEUE = 'cronq_results_dead';

/**
 * Deliveries of one job message before the broker sets it aside. A runner
 * hands a message back only when it stops or its channel or broker node is
 * lost, so a message returned this often is crashing whatever takes it.
 */
export const JOB_DELIVERY_LIMIT = 20;
/**
 * Deliveries of one result message before it is set aside. The results
 * consumer already dead-letters a message the database refuses; it hands a
 * whole batch back (and so raises this count) on every failed write while
 * the database is away, once per backoff (15 s at most): 1,000 deliveries
 * are hours of outage, so a bad minute never moves a good result aside.
 */
export const RESULTS_DELIVERY_LIMIT = 1000;

export type QueueRole = 'job' | 'results' | 'dead';

/** The x-arguments of one CronQ queue for a queue type. */
export function queueArguments(type: QueueType, role: QueueRole): Record<string, unknown> {
  if (type === 'classic') return {};
  if (role === 'dead') return { 'x-queue-type': 'quorum' };
  return {
    'x-queue-type': 'quorum',
    'x-delivery-limit': role === 'job' ? JOB_DELIVERY_LIMIT : RESULTS_DELIVERY_LIMIT,
    // Past the limit the broker moves the message to the dead-letter queue (through the default exchange) instead of dropping it.
    'x-dead-letter-exchange': '',
    'x-dead-letter-routing-key': DEAD_LETTER_QUEUE,
  };
}

export function otherQueueType(type: QueueType): QueueType {
  return type === 'classic' ? 'quorum' : 'classic';
}

/** The broker's answer to a declare whose arguments differ from the existing queue's. */
export function isInequivalentArgError(err: unknown): boolean {
  const e = err as { code?: unknown; message?: unknown } | null;
  return e?.code === 406 && typeof e.message === 'string' && e.message.includes('inequivalent arg');
}

/**
 * A queue exists with another type (or other arguments) than CRONQ_QUEUE_TYPE
 * declares. Reconnecting cannot cure it, so the command stops with exit 2.
 */
export class QueueTypeMismatchError extends ConfigError {
  constructor(
    readonly queue: string,
    readonly vhost: string,
    readonly wanted: QueueType,
    /** The existing queue's type, or undefined when it matches neither declaration. */
    readonly existing: QueueType | undefined,
    options?: { cause?: unknown },
  ) {
    const what =
      existing === undefined
        ? `exists with other arguments than a CronQ ${wanted} queue`
        : `is a ${existing} queue`;
    super(
      `queue '${queue}' in vhost '${vhost}' ${what}, but CRONQ_QUEUE_TYPE=${wanted}: ` +
        `either set CRONQ_QUEUE_TYPE=${existing ?? otherQueueType(wanted)}, or move it: ` +
        `drain the queue, stop every CronQ daemon, delete the queue, restart them with ` +
        `CRONQ_QUEUE_TYPE=${wanted} (docs/scaling.md, "Changing the queue type")`,
      options,
    );
  }
}
