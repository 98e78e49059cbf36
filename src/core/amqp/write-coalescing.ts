import type { ChannelModel } from 'amqplib';
import type { Logger } from '../logger';

/**
 * amqplib's multiplexer writes each frame it takes from a channel to the
 * socket on its own: one syscall per ack, publish or confirm. Corking the
 * socket for one pass of the multiplexer turns a pass into one writev, so
 * under load dozens of frames go out per syscall (the runner's start path
 * writes a result and an ack back to back). Frame order and content are
 * unchanged.
 *
 * It reaches into amqplib's `connection.muxer._readIncoming` and
 * `connection.stream`, which is why package.json pins amqplib to an exact
 * version and test/integration/amqp-consumer.test.ts ("write coalescing") fails when
 * the internals it needs are not there. With another amqplib whose
 * internals differ, nothing is changed and one warning says so.
 */
export function coalesceWrites(model: ChannelModel, logger?: Logger): boolean {
  const inner = (model as unknown as { connection?: { muxer?: unknown; stream?: unknown } })
    .connection;
  const mux = inner?.muxer as { _readIncoming?: () => void } | undefined;
  const stream = inner?.stream as { cork?: () => void; uncork?: () => void } | undefined;
  const pass = mux?._readIncoming;
  if (!mux || typeof pass !== 'function' || !stream?.cork || !stream.uncork) {
    if (logger && !warned) {
      warned = true;
      logger.warn(
        'amqplib internals differ from the pinned version: frames are written one by one (slower under load)',
      );
    }
    return false;
  }
  mux._readIncoming = function (this: unknown) {
    stream.cork!();
    try {
      pass.call(mux);
    } finally {
      stream.uncork!();
    }
  };
  return true;
}

let warned = false;
