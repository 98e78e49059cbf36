/**
 * A process that logs through CronQ's logger: one line at start, then, on
 * SIGTERM, a few more lines and an immediate exit (so they are still queued
 * when the exit flush runs). Used by logger.test.ts.
 */
import { createLogger } from '../../src/core/logger';

const log = createLogger({ component: 'logger-test' });
log.info('ready');
process.on('SIGTERM', () => {
  for (let i = 0; i < 5; i += 1) log.info({ i }, 'stopping');
  process.exit(0);
});
setInterval(() => undefined, 1000);
