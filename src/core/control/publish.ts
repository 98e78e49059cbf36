import { withChannel, type AmqpConnection, type ConfirmPublisher } from '../amqp';
import { within } from '../async';
import { BrokerUnavailableError } from '../errors';
import { encodeControl, type ControlMessage } from './messages';
import { CONTROL_EXCHANGE, CONTROL_KEYS, declareControlExchange } from './topology';

/** How long a control publish may wait for the broker's confirm before it is "broker unavailable". */
const CONFIRM_TIMEOUT_MS = 3000;

/**
 * Publishes control orders through the confirm publisher. Never waits for
 * a broker that is away: with no connection it rejects at once with
 * BrokerUnavailableError, so a web request answers "broker unavailable"
 * and nothing is queued for later. Orders are not persistent: they are
 * for the processes alive now.
 */
export class ControlPublisher {
  private declared = false;

  constructor(
    private readonly connection: AmqpConnection,
    private readonly publisher: ConfirmPublisher,
  ) {}

  /**
   * Declare the exchange on every (re)connection; call before the connection
   * starts. By default a failed declaration fails the connection's setup
   * (it is retried with the connection); with `onDeclareError`, for a
   * daemon whose orders are a side line, it is reported there instead and
   * the publisher stays unavailable until the next connection.
   */
  async start(opts: { onDeclareError?: (err: unknown) => void } = {}): Promise<void> {
    await this.connection.onConnect(async (conn) => {
      this.declared = false;
      try {
        await withChannel(conn, declareControlExchange);
      } catch (err) {
        if (!opts.onDeclareError) throw err;
        opts.onDeclareError(err);
        return;
      }
      this.declared = true;
    });
    this.connection.on('disconnected', () => (this.declared = false));
  }

  /** True while an order can be published now. */
  get available(): boolean {
    return this.connection.isConnected && this.declared;
  }

  /** Publish; resolves once confirmed (with whether any listener's queue was bound). */
  async send(message: ControlMessage): Promise<{ routed: boolean }> {
    if (!this.available) throw new BrokerUnavailableError('broker unavailable');
    const sent = this.publisher.publish(
      CONTROL_EXCHANGE,
      CONTROL_KEYS[message.type],
      encodeControl(message),
      { persistent: false, mandatory: true },
    );
    try {
      const r = await within(sent, CONFIRM_TIMEOUT_MS);
      if (!r.done) {
        sent.catch(() => undefined);
        throw new BrokerUnavailableError('broker unavailable (no confirm in time)');
      }
      return r.value;
    } catch (err) {
      if (err instanceof BrokerUnavailableError) throw err;
      throw new BrokerUnavailableError('broker unavailable', { cause: err });
    }
  }
}
