import { Command } from 'commander';
import { AmqpConnection, ConfirmPublisher, exponentialBackoff, sleep } from '../core/amqp';
import { describeConfig, loadConfig } from '../core/config';
import { createDb, migrate } from '../core/db';
import { isTransientDbError } from '../core/errors';
import { Releasers, stopOnSignals } from '../core/lifecycle';
import { createLogger, type Logger } from '../core/logger';
import { declareCore } from '../core/topology';
import { Injector } from '../injector';
import { addCommonOptions, commonOverrides, runCli } from './common';

/**
 * cronq-injector: bring the tables up to date (non-destructive), then claim
 * due jobs and publish them, until SIGINT/SIGTERM (which finishes the
 * batch in hand and exits 0). Run as many as you like, on any hosts.
 */
export async function run(argv: string[]): Promise<void> {
  const program = addCommonOptions(new Command('cronq-injector'))
    .description('Claim due jobs from the database and publish them to the broker (any number may run at once).')
    .option('--batch-size <n>', 'most jobs claimed per transaction (CRONQ_INJECTOR_BATCH_SIZE, default 500)')
    .option('--max-poll-ms <ms>', 'longest wait between looks at the database (CRONQ_INJECTOR_MAX_POLL_MS, default 1000)')
    .addHelpText('after', '\nEnvironment: DATABASE_URL (or CRONQ_MYSQL), RABBITMQ_URL (or RABBITMQ_HOST/USER/PASS), CRONQ_INJECTOR_*, CRONQ_LOG_LEVEL.\nSee docs/injector.md.\n')
    .action(async (flags: { batchSize?: string; maxPollMs?: string; logLevel?: string; logFormat?: string }) => {
      const config = loadConfig(process.env, {
        ...commonOverrides(flags),
        CRONQ_INJECTOR_BATCH_SIZE: flags.batchSize,
        CRONQ_INJECTOR_MAX_POLL_MS: flags.maxPollMs,
      });
      const logger = createLogger({ component: 'injector', level: config.log.level, format: config.log.format });
      logger.info(describeConfig(config), 'starting');
      const releasers = new Releasers(logger);
      const db = createDb(config.database, { poolMax: 4 });
      releasers.add('database', () => db.destroy());
      const connection = new AmqpConnection(config.amqp, { logger, name: `cronq-injector ${config.host}.${process.pid}` });
      releasers.add('amqp connection', () => connection.close());
      const publisher = new ConfirmPublisher(connection, logger);
      releasers.add('amqp publisher', () => publisher.close());
      const abort = new AbortController();
      let injector: Injector | undefined;
      stopOnSignals(async () => {
        abort.abort();
        await injector?.stop();
        await releasers.releaseAll();
      }, logger);

      await migrateWithRetry(db, logger, abort.signal);
      if (abort.signal.aborted) return;
      await connection.onConnect(async (conn) => {
        // The exchange must exist before the first publish, or the channel closes with 404.
        const ch = await conn.createChannel();
        await declareCore(ch);
        await ch.close();
      });
      connection.start();
      injector = new Injector({
        db,
        connection,
        publisher,
        settings: config.injector,
        claimant: `${config.host}.${process.pid}`.slice(0, 64),
        logger,
        testPauseAfterCommitMs: testHook('CRONQ_INJECTOR_TEST_PAUSE_AFTER_COMMIT_MS'),
        testPauseAfterConfirmMs: testHook('CRONQ_INJECTOR_TEST_PAUSE_AFTER_CONFIRM_MS'),
      });
      await injector.start();
    });
  await runCli(program, argv);
}

/** The database may still be starting: transient errors are waited out, anything else is fatal. */
async function migrateWithRetry(db: ReturnType<typeof createDb>, logger: Logger, signal: AbortSignal): Promise<void> {
  const backoff = exponentialBackoff(250, 15_000);
  for (let attempt = 0; !signal.aborted; attempt++) {
    try {
      const applied = await migrate(db);
      if (applied.length > 0) logger.info({ applied }, 'database migrated');
      return;
    } catch (err) {
      if (!isTransientDbError(err)) throw err;
      const delay = backoff.delay(attempt);
      const fields = { err: (err as Error).message, nextRetryAt: new Date(Date.now() + delay).toISOString() };
      if (attempt === 0) logger.warn(fields, 'database unavailable; retrying with backoff');
      else logger.debug(fields, 'database still unavailable');
      await sleep(delay, signal);
    }
  }
}

/** TEST ONLY hooks (documented in docs/injector.md): a pause in milliseconds, or undefined. */
function testHook(name: string): number | undefined {
  const v = Number(process.env[name] ?? '');
  return Number.isFinite(v) && v > 0 ? v : undefined;
}
