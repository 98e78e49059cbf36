/**
 * The control channel (docs/architecture.md): kill, watch and wake orders
 * on the topic exchange `cronq.control`.
 */
export * from './messages';
export * from './topology';
export { ControlConsumer, type ControlEvents, type ControlConsumerOptions } from './consumer';
export { ControlPublisher } from './publish';
