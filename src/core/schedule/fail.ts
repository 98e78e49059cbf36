import { ScheduleSyntaxError } from '../errors';

/** Throws ScheduleSyntaxError for schedule `text`, quoting it before `message`. */
export function fail(text: string, message: string): never {
  throw new ScheduleSyntaxError(`schedule ${JSON.stringify(text)}: ${message}`);
}
