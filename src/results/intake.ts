import { MessageFormatError } from '../core/errors';
import { parseResultMessage, type ParseLimits, type ResultMessage } from '../core/messages';
import { shortError } from './errors';

/**
 * The one place where an incoming result message becomes a ResultMessage
 * (checks on the raw delivery, such as a signature, belong here too).
 * Never throws: a message that cannot be read comes back as `malformed`
 * with a short reason and is dead-lettered, so one bad message can neither
 * stop the consumer's callback nor come back forever.
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
