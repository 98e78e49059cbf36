import type { Channel } from 'amqplib';

/** The names of SPEC.md's AMQP topology, in one place. */
export const EXCHANGE = 'cronq';
export const RESULTS_QUEUE = 'cronq_results';
export const RESULTS_ROUTING_KEY = 'cronq_results';
/** Malformed result messages are moved here (not dropped) so an operator can look. */
export const RESULTS_DEAD_QUEUE = 'cronq_results_dead';
export const DEFAULT_JOB_QUEUE = 'cronq_jobs';
export const DEFAULT_ROUTING_KEY = 'default';

/** `cronq_jobs` takes routing key `default`; any other queue takes its own name. */
export function routingKeyForQueue(queue: string): string {
  return queue === DEFAULT_JOB_QUEUE ? DEFAULT_ROUTING_KEY : queue;
}

/** The queue a job with this routing key lands in (the inverse of routingKeyForQueue). */
export function queueForRoutingKey(routingKey: string): string {
  return routingKey === DEFAULT_ROUTING_KEY ? DEFAULT_JOB_QUEUE : routingKey;
}

/**
 * Declare the exchange and the results queues. Queues are declared with no
 * extra arguments so that queues made by the original Python cronq (which
 * set none) are accepted as they are instead of failing with
 * PRECONDITION_FAILED.
 */
export async function declareCore(ch: Channel): Promise<void> {
  await ch.assertExchange(EXCHANGE, 'direct', { durable: true });
  await ch.assertQueue(RESULTS_QUEUE, { durable: true });
  await ch.bindQueue(RESULTS_QUEUE, EXCHANGE, RESULTS_ROUTING_KEY);
  await ch.assertQueue(RESULTS_DEAD_QUEUE, { durable: true });
}

/** Declare a runner's queue and bind it by SPEC.md's rule. */
export async function declareJobQueue(ch: Channel, queue: string): Promise<void> {
  await ch.assertExchange(EXCHANGE, 'direct', { durable: true });
  await ch.assertQueue(queue, { durable: true });
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
export async function declareDeadQueue(ch: Channel, queue: string): Promise<void> {
  await ch.assertExchange(DEAD_EXCHANGE, 'direct', { durable: true });
  await ch.assertQueue(queue, { durable: true });
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
