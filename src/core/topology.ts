import { errorMessage } from './async';
import type { Channel, ChannelModel } from 'amqplib';
import { withChannel } from './amqp/channels';
import {
  DEAD_LETTER_QUEUE,
  isInequivalentArgError,
  otherQueueType,
  queueArguments,
  QueueTypeMismatchError,
  type QueueRole,
  type QueueType,
} from './queue-type';

/** The names of SPEC.md's AMQP topology, in one place. */
export const EXCHANGE = 'cronq';
export const RESULTS_QUEUE = 'cronq_results';
export const RESULTS_ROUTING_KEY = 'cronq_results';
/** Malformed result messages are moved here (not dropped) so an operator can look. */
export const RESULTS_DEAD_QUEUE = DEAD_LETTER_QUEUE;
export const DEFAULT_JOB_QUEUE = 'cronq_jobs';
export const DEFAULT_ROUTING_KEY = 'default';

/** `cronq_jobs` takes routing key `default`; any other queue takes its own name. */
export function routingKeyForQueue(queue: string): string {
  return queue === DEFAULT_JOB_QUEUE ? DEFAULT_ROUTING_KEY : queue;
}

/**
 * Declare the exchange and the results queues. Classic queues are declared
 * with no extra arguments so that queues made by the original Python cronq
 * (which set none) are accepted as they are instead of failing with
 * PRECONDITION_FAILED.
 */
export async function declareCore(ch: Channel, type: QueueType = 'classic'): Promise<void> {
  await ch.assertExchange(EXCHANGE, 'direct', { durable: true });
  // The dead-letter queue first: a quorum results queue dead-letters into it.
  await ch.assertQueue(RESULTS_DEAD_QUEUE, {
    durable: true,
    arguments: queueArguments(type, 'dead'),
  });
  await ch.assertQueue(RESULTS_QUEUE, {
    durable: true,
    arguments: queueArguments(type, 'results'),
  });
  await ch.bindQueue(RESULTS_QUEUE, EXCHANGE, RESULTS_ROUTING_KEY);
}

/** Declare a runner's queue and bind it by SPEC.md's rule. */
export async function declareJobQueue(
  ch: Channel,
  queue: string,
  type: QueueType = 'classic',
): Promise<void> {
  await ch.assertExchange(EXCHANGE, 'direct', { durable: true });
  await ch.assertQueue(queue, { durable: true, arguments: queueArguments(type, 'job') });
  await ch.bindQueue(queue, EXCHANGE, routingKeyForQueue(queue));
}

/**
 * Dead letters are published through their own exchange, bound only to the
 * dead queues, and not through the default exchange: a user allowed to
 * write to the default exchange can put a message into any queue, a job
 * queue included (docs/security.md, least privilege).
 */
export const DEAD_EXCHANGE = 'cronq_dead';

/** Declare a dead queue and bind it to DEAD_EXCHANGE under its own name. */
export async function declareDeadQueue(
  ch: Channel,
  queue: string,
  type: QueueType = 'classic',
): Promise<void> {
  await ch.assertExchange(DEAD_EXCHANGE, 'direct', { durable: true });
  await ch.assertQueue(queue, { durable: true, arguments: queueArguments(type, 'dead') });
  await ch.bindQueue(queue, DEAD_EXCHANGE, queue);
}

/**
 * Where a runner moves the job messages it refuses (unsigned or badly
 * signed, docs/security.md) from `queue`, so an operator can look. Declared
 * only when message signing is on.
 */
export function refusedJobQueue(queue: string): string {
  return `${queue}_dead`;
}

/**
 * Declare the topology a daemon needs (and `jobQueue`, for a runner) on a
 * channel of its own. A queue that exists with the other type makes the
 * broker close the channel with PRECONDITION_FAILED; that becomes a
 * QueueTypeMismatchError naming the queue and its type, which no reconnect
 * can cure.
 */
export async function declareTopology(
  conn: ChannelModel,
  opts: { type: QueueType; vhost: string; jobQueue?: string },
): Promise<void> {
  try {
    await withChannel(conn, async (ch) => {
      await declareCore(ch, opts.type);
      if (opts.jobQueue !== undefined) await declareJobQueue(ch, opts.jobQueue, opts.type);
    });
  } catch (err) {
    if (!isInequivalentArgError(err)) throw err;
    const queue = /for queue '([^']*)'/.exec(errorMessage(err))?.[1] ?? '?';
    const role: QueueRole =
      queue === RESULTS_DEAD_QUEUE ? 'dead' : queue === RESULTS_QUEUE ? 'results' : 'job';
    const existing = (await declaresAs(conn, queue, otherQueueType(opts.type), role))
      ? otherQueueType(opts.type)
      : undefined;
    throw new QueueTypeMismatchError(queue, opts.vhost, opts.type, existing, { cause: err });
  }
}

/** True if `queue` takes a declaration as `type` unchanged: it is a queue of that type. */
async function declaresAs(
  conn: ChannelModel,
  queue: string,
  type: QueueType,
  role: QueueRole,
): Promise<boolean> {
  try {
    await withChannel(conn, async (ch) => {
      await ch.checkQueue(queue);
      await ch.assertQueue(queue, { durable: true, arguments: queueArguments(type, role) });
    });
    return true;
  } catch {
    return false;
  }
}
