import type { EventEmitter } from 'node:events';
import type { ConfirmPublisher } from '../core/amqp';
import type { Logger } from '../core/logger';
import { DEAD_EXCHANGE, RESULTS_DEAD_QUEUE } from '../core/topology';
import type { ResultsEvents } from './events';
import type { ResultItem } from './intake';

/**
 * Result messages that cannot be stored go to `cronq_results_dead` through
 * the exchange `cronq_dead`, unchanged, with the reason in a header. The
 * publish waits for the broker's confirm: only then may the message be
 * acked (with its batch), so a dead letter is never lost between the two.
 */
export class DeadLetters {
  constructor(
    private readonly opts: {
      publisher: ConfirmPublisher;
      logger: Logger;
      events: EventEmitter<ResultsEvents>;
    },
  ) {}

  async publish(item: ResultItem, reason: string): Promise<void> {
    const { msg } = item.delivery;
    const p = msg.properties;
    const short = shortReason(reason);
    await this.opts.publisher.publish(DEAD_EXCHANGE, RESULTS_DEAD_QUEUE, msg.content, {
      persistent: true,
      headers: {
        ...originalHeaders(p.headers),
        'x-cronq-dead-reason': short,
        'x-cronq-dead-at': new Date().toISOString(),
        ...(p.messageId ? { 'x-cronq-original-message-id': String(p.messageId) } : {}),
      },
      ...(p.contentType ? { contentType: String(p.contentType) } : {}),
    });
    this.opts.logger.warn(
      {
        reason: short,
        queue: RESULTS_DEAD_QUEUE,
        // A refused (unsigned) body may be anyone's: it is not logged.
        body: item.refused ? undefined : msg.content.subarray(0, 200).toString('utf8'),
      },
      'result message cannot be stored; moved to the dead-letter queue',
    );
    this.opts.events.emit('dead-lettered', { reason: short, refused: item.refused === true });
  }
}

/** Dead-letter reasons are headers: short, one line, never a statement or a command. */
export function shortReason(reason: string): string {
  const line = reason.replace(/\s+/g, ' ');
  return line.length > 240 ? `${line.slice(0, 239)}…` : line;
}

/**
 * The message's own headers, kept on its dead letter unless they are large:
 * a header block that no longer fits a frame with ours added would make the
 * dead-letter publish fail, and the batch with it, forever.
 */
function originalHeaders(h: Record<string, unknown> | undefined): Record<string, unknown> {
  if (!h) return {};
  let size: number;
  try {
    size = JSON.stringify(h).length;
  } catch {
    size = Infinity;
  }
  return size <= 16 * 1024 ? h : { 'x-cronq-original-headers': 'dropped (over 16 KiB)' };
}
