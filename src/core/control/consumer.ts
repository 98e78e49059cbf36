import { EventEmitter } from 'node:events';
import { ResilientConsumer, type AmqpConnection, type Delivery } from '../amqp';
import { errorMessage } from '../async';
import type { Logger } from '../logger';
import type { KillOrder, WatchOrder } from './messages';
import { parseControlMessage } from './messages';
import { declareControlQueue } from './topology';

export type ControlEvents = {
  /** Kill this run (runners). */
  'control:kill': [KillOrder];
  /** Stream this run's live output until `until` (runners). */
  'control:watch': [WatchOrder];
  /** Claim now: someone asked for *Run now* (injectors). */
  'control:wake': [{ requestedAt: Date }];
  /** A body that was not a valid control message: dropped. */
  'control:dropped': [{ error: string }];
  /** The control queue is consumed (on start and after each reconnect). */
  'control:listening': [];
};

export interface ControlConsumerOptions {
  connection: AmqpConnection;
  logger: Logger;
  /** Routing keys bound (topology.ts: RUNNER_CONTROL_BINDING, INJECTOR_CONTROL_BINDING). */
  bindings: readonly string[];
}

/**
 * Listens on the control exchange through a ResilientConsumer whose queue
 * is server-named, exclusive and auto-delete, declared again on every new
 * channel (so after a reconnect too). Each body is acked at once, parsed
 * and bounded (messages.ts) and announced as a typed event; a bad one is
 * dropped with a log line, never thrown.
 */
export class ControlConsumer extends EventEmitter<ControlEvents> {
  private readonly consumer: ResilientConsumer;

  constructor(private readonly opts: ControlConsumerOptions) {
    super();
    this.consumer = new ResilientConsumer({
      connection: opts.connection,
      queue: '(control)',
      prefetch: 100,
      logger: opts.logger,
      onDelivery: (d) => this.take(d),
      declare: (_conn, ch) => declareControlQueue(ch, opts.bindings),
    });
    this.consumer.on('consuming', () => this.emit('control:listening'));
  }

  get listening(): boolean {
    return this.consumer.consuming;
  }

  start(): Promise<void> {
    return this.consumer.start();
  }

  async stop(): Promise<void> {
    await this.consumer.stop();
    await this.consumer.close();
  }

  private take(d: Delivery): void {
    d.ack();
    let order;
    try {
      order = parseControlMessage(d.msg.content);
    } catch (err) {
      const error = errorMessage(err);
      this.opts.logger.warn(
        { err: error, body: d.msg.content.toString('utf8', 0, 200) },
        'dropping a malformed control message',
      );
      this.emit('control:dropped', { error });
      return;
    }
    try {
      if (order.type === 'kill') {
        const { runId, requestedBy, requestedAt, reason } = order;
        this.emit('control:kill', { runId, requestedBy, requestedAt, reason });
      } else if (order.type === 'watch') {
        this.emit('control:watch', { runId: order.runId, until: order.until });
      } else {
        this.emit('control:wake', { requestedAt: order.requestedAt });
      }
    } catch (err) {
      // A listener's bug must not close the channel or lose the next orders.
      this.opts.logger.error(
        { err: errorMessage(err), type: order.type },
        'a control order could not be handled',
      );
    }
  }
}
