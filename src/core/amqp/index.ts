/**
 * Everything CronQ does with RabbitMQ goes through here: one connection
 * that reconnects (connection.ts), one resilient consumer (consumer.ts),
 * one confirm publisher (publisher.ts). Channels are opened only in
 * channels.ts.
 */
export type { ChannelModel, ConfirmChannel, ConsumeMessage } from 'amqplib';
export { connectUrl, AmqpConnection, type AmqpConnectionOptions } from './connection';
export { ConfirmPublisher, type PublishResult } from './publisher';
export {
  ResilientConsumer,
  type ConsumerEvents,
  type Delivery,
  type ResilientConsumerOptions,
} from './consumer';
export { withChannel } from './channels';
