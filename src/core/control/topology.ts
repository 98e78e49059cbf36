import type { Channel } from 'amqplib';

/**
 * The control exchange: a durable topic exchange that carries small orders
 * between processes (messages.ts). Each listener has its own exclusive,
 * auto-delete, server-named queue bound to it, declared anew on every
 * channel, so an order reaches every live listener of its kind and none is
 * kept for a process that is not there (nothing is queued for later).
 */
export const CONTROL_EXCHANGE = 'cronq.control';

/** Routing keys: who listens to what. */
export const CONTROL_KEYS = {
  kill: 'runner.kill',
  watch: 'runner.watch',
  wake: 'injector.wake',
} as const;

/** What each kind of listener binds. */
export const RUNNER_CONTROL_BINDING = 'runner.*';
export const INJECTOR_CONTROL_BINDING = 'injector.*';

/** Declare the exchange (publishers need only this). */
export async function declareControlExchange(ch: Channel): Promise<void> {
  await ch.assertExchange(CONTROL_EXCHANGE, 'topic', { durable: true });
}

/**
 * Declare the exchange and a fresh server-named queue bound to `bindings`;
 * returns the queue's name. Exclusive and auto-delete: it goes with its
 * connection or consumer, and is never of the quorum type (a quorum queue
 * cannot be exclusive), whatever CRONQ_QUEUE_TYPE says.
 */
export async function declareControlQueue(
  ch: Channel,
  bindings: readonly string[],
): Promise<string> {
  await declareControlExchange(ch);
  const { queue } = await ch.assertQueue('', {
    exclusive: true,
    autoDelete: true,
    durable: false,
    // Orders are for now: one that waited a minute in a queue is stale.
    arguments: { 'x-message-ttl': 60_000, 'x-max-length': 1000 },
  });
  for (const key of bindings) await ch.bindQueue(queue, CONTROL_EXCHANGE, key);
  return queue;
}
