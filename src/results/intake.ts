import type { Delivery } from '../core/amqp';
import { MessageFormatError } from '../core/errors';
import { parseResultMessage, type ParseLimits, type ResultMessage } from '../core/messages';
import type { MessageSigner } from '../core/signing';
import { shortError } from './errors';

/**
 * The one place where an incoming result message becomes a ResultMessage,
 * with the checks on the raw delivery (its signature). Never throws: a
 * message that cannot be read comes back as `malformed` with a short
 * reason and is dead-lettered, so one bad message can neither stop the
 * consumer's callback nor come back forever.
 */
export type Intake = { result: ResultMessage } | { malformed: string };

export function readResult(content: Buffer, limits: ParseLimits): Intake {
  try {
    return { result: parseResultMessage(content, limits) };
  } catch (err) {
    if (err instanceof MessageFormatError) return { malformed: err.message };
    // A parser bug must not take the consumer down either; the reason says it was unexpected.
    return { malformed: `could not be read: ${shortError(err)}` };
  }
}

/** One delivery in hand: read, or set aside with the reason it goes to the dead-letter queue. */
export interface ResultItem {
  delivery: Delivery;
  result?: ResultMessage;
  malformed?: string;
  /** Not signed with our key: dead-lettered without logging its body. */
  refused?: boolean;
}

export function takeDelivery(
  delivery: Delivery,
  opts: { maxOutputBytes: number; signer?: MessageSigner },
): ResultItem {
  let item: ResultItem;
  try {
    item = {
      delivery,
      ...readResult(delivery.msg.content, { maxOutputBytes: opts.maxOutputBytes }),
    };
  } catch (err) {
    // readResult does not throw; should it ever, the message is set aside, not the consumer.
    return { delivery, malformed: `could not be read: ${shortError(err)}` };
  }
  const refusal =
    opts.signer && item.result ? refusalOf(item.result, delivery, opts.signer) : undefined;
  return refusal === undefined
    ? item
    : { delivery, malformed: `refused: ${refusal}`, refused: true };
}

/**
 * A result not signed by one of our keys never reaches the database. No
 * age limit: a result may wait in the queue as long as this consumer is
 * down, and a replayed one changes nothing (store.ts writes each run's
 * outcome once).
 */
function refusalOf(
  result: ResultMessage,
  { msg }: Delivery,
  signer: MessageSigner,
): string | undefined {
  return signer.verify('result', result.run_id, msg.content, msg.properties.headers, {
    maxFutureMs: Infinity,
  });
}
