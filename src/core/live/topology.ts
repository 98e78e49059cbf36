import type { Channel } from 'amqplib';

/**
 * Live output (docs/architecture.md): a runner streams a watched run's
 * output to the topic exchange `cronq.output`, routing key = run id. Each
 * web process reads it through one queue of its own, bound to the runs its
 * viewers watch: exclusive, auto-delete, server-named, and bounded
 * (x-max-length with overflow drop-head, a short message TTL), so a viewer
 * that cannot keep up loses the oldest chunks, never fills the broker.
 */
export const OUTPUT_EXCHANGE = 'cronq.output';

/** Chunks a web's output queue holds at most (drop-head beyond). */
export const OUTPUT_QUEUE_MAX_LENGTH = 256;
/** A chunk older than this is of no use to a live view. */
export const OUTPUT_MESSAGE_TTL_MS = 10_000;

export async function declareOutputExchange(ch: Channel): Promise<void> {
  await ch.assertExchange(OUTPUT_EXCHANGE, 'topic', { durable: true });
}

/** Declare the exchange and a fresh bounded queue for one web process; returns its name. */
export async function declareOutputQueue(ch: Channel): Promise<string> {
  await declareOutputExchange(ch);
  const { queue } = await ch.assertQueue('', {
    exclusive: true,
    autoDelete: true,
    durable: false,
    arguments: {
      'x-max-length': OUTPUT_QUEUE_MAX_LENGTH,
      'x-overflow': 'drop-head',
      'x-message-ttl': OUTPUT_MESSAGE_TTL_MS,
    },
  });
  return queue;
}
