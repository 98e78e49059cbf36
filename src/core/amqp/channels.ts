import type { Channel, ChannelModel, ConfirmChannel } from 'amqplib';

/**
 * The one place a channel is opened. Everything else goes through the
 * resilient consumer, the confirm publisher, or `withChannel` for a
 * short-lived declaration.
 */
export function openChannel(conn: ChannelModel, opts: { confirm: true }): Promise<ConfirmChannel>;
export function openChannel(conn: ChannelModel, opts?: { confirm?: false }): Promise<Channel>;
export function openChannel(
  conn: ChannelModel,
  opts: { confirm?: boolean } = {},
): Promise<Channel | ConfirmChannel> {
  return opts.confirm ? conn.createConfirmChannel() : conn.createChannel();
}

/**
 * Run `work` on a channel of its own and close it after. A channel error
 * (such as a 406 from a declaration) also arrives as `work`'s rejection, so
 * the channel's error event is only swallowed, not lost.
 */
export async function withChannel<T>(
  conn: ChannelModel,
  work: (ch: Channel) => Promise<T>,
): Promise<T> {
  const ch = await openChannel(conn);
  ch.on('error', () => undefined);
  try {
    return await work(ch);
  } finally {
    await ch.close().catch(() => undefined);
  }
}
