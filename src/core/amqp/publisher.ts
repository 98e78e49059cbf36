import { randomUUID } from 'node:crypto';
import type { ConfirmChannel, ConsumeMessage, Options } from 'amqplib';
import { BrokerUnavailableError } from '../errors';
import type { Logger } from '../logger';
import { openChannel } from './channels';
import type { AmqpConnection } from './connection';

export interface PublishResult {
  /** False when the broker returned the message: no queue is bound for its routing key. */
  routed: boolean;
}

interface Pending {
  messageId: string;
  exchange: string;
  routingKey: string;
  resolve: (r: PublishResult) => void;
  reject: (e: Error) => void;
  returned: boolean;
}

/**
 * Publishes with publisher confirms on one confirm channel of an
 * AmqpConnection. `publish` resolves once the broker has taken
 * responsibility for the message (ack), and says whether it was routed
 * (`mandatory` returns arrive before the ack); it rejects on a nack or when
 * the channel or connection closes first, so the caller knows the message
 * may not have been stored.
 */
export class ConfirmPublisher {
  private channel: ConfirmChannel | undefined;
  private opening: Promise<ConfirmChannel> | undefined;
  /** Unconfirmed publishes in the order sent; the same message id may be in flight twice (a republish). */
  private readonly pending = new Set<Pending>();

  constructor(
    private readonly connection: AmqpConnection,
    private readonly logger: Logger,
  ) {
    connection.on('disconnected', () =>
      this.dropChannel(new BrokerUnavailableError('AMQP connection lost before confirm')),
    );
  }

  private dropChannel(err: Error): void {
    this.channel = undefined;
    this.opening = undefined;
    for (const p of this.pending) p.reject(err);
    this.pending.clear();
  }

  private async getChannel(): Promise<ConfirmChannel> {
    if (this.channel) return this.channel;
    if (!this.opening) {
      this.opening = (async () => {
        const conn = await this.connection.connection();
        const ch = await openChannel(conn, { confirm: true });
        ch.on('error', (err: Error) =>
          this.logger.warn({ err: err.message }, 'AMQP publish channel error'),
        );
        ch.on('close', () => {
          if (this.channel === ch)
            this.dropChannel(new BrokerUnavailableError('AMQP channel closed before confirm'));
        });
        ch.on('return', (msg: ConsumeMessage) => {
          const id = msg.properties.messageId as string | undefined;
          // A return precedes the ack of its publish: mark the oldest unconfirmed one of that id and route.
          for (const p of this.pending) {
            if (
              p.messageId === id &&
              p.exchange === msg.fields.exchange &&
              p.routingKey === msg.fields.routingKey &&
              !p.returned
            ) {
              p.returned = true;
              break;
            }
          }
        });
        this.channel = ch;
        return ch;
      })();
      this.opening.catch(() => {
        this.opening = undefined;
      });
    }
    return this.opening;
  }

  /**
   * Publish and resolve when the broker confirms. With the channel open the
   * message is handed to it synchronously, before this returns (so a caller
   * can order it before an ack it sends next on the same connection).
   */
  publish(
    exchange: string,
    routingKey: string,
    body: Buffer,
    options: Options.Publish = {},
  ): Promise<PublishResult> {
    if (this.channel) return this.publishOn(this.channel, exchange, routingKey, body, options);
    return this.getChannel().then((ch) => this.publishOn(ch, exchange, routingKey, body, options));
  }

  private publishOn(
    ch: ConfirmChannel,
    exchange: string,
    routingKey: string,
    body: Buffer,
    options: Options.Publish,
  ): Promise<PublishResult> {
    const messageId = options.messageId ?? randomUUID();
    return new Promise<PublishResult>((resolve, reject) => {
      const entry: Pending = { messageId, exchange, routingKey, resolve, reject, returned: false };
      this.pending.add(entry);
      try {
        ch.publish(
          exchange,
          routingKey,
          body,
          { persistent: true, contentType: 'application/json', ...options, messageId },
          (err) => {
            if (!this.pending.delete(entry)) return;
            if (err)
              reject(
                new BrokerUnavailableError('broker refused the message (nack)', { cause: err }),
              );
            else resolve({ routed: !entry.returned });
          },
        );
      } catch (err) {
        this.pending.delete(entry);
        reject(new BrokerUnavailableError('publish failed', { cause: err }));
      }
    });
  }

  /** Messages sent and not yet confirmed. */
  get inFlight(): number {
    return this.pending.size;
  }

  async close(): Promise<void> {
    const ch = this.channel;
    this.channel = undefined;
    if (ch) await ch.close().catch(() => undefined);
  }
}
