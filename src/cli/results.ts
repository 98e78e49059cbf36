import { Command } from 'commander';
import { AmqpConnection, ConfirmPublisher, exponentialBackoff, sleep } from '../core/amqp';
import { describeConfig, loadConfig } from '../core/config';
import { createDb, migrate } from '../core/db';
import { isTransientDbError } from '../core/errors';
import { Releasers, stopOnSignals } from '../core/lifecycle';
import { createLogger } from '../core/logger';
import { ResultsService } from '../results';
import { addCommonOptions, commonOverrides, runCli } from './common';

/** `cronq-results`: write the runners' results into the database (docs/results.md). */
export async function run(argv: string[]): Promise<void> {
  const program = addCommonOptions(
    new Command('cronq-results')
      .description(
        'Consume cronq_results and record every run, event and job status in the database; mark silent runs lost',
      )
      .option(
        '--prefetch <n>',
        'results written per batch; twice this many are taken from the broker at once (CRONQ_RESULTS_PREFETCH; default 500)',
      ),
  ).action(async (opts: { prefetch?: string; logLevel?: string; logFormat?: string }) => {
    const config = loadConfig(process.env, {
      ...commonOverrides(opts),
      CRONQ_RESULTS_PREFETCH: opts.prefetch,
    });
    const logger = createLogger({
      component: 'results',
      level: config.log.level,
      format: config.log.format,
    });
    logger.info({ ...describeConfig(config), ...config.results }, 'cronq-results starting');
    const releasers = new Releasers(logger);
    // READ COMMITTED: see src/results/store.ts for why it is safe and why it is chosen.
    const db = createDb(config.database, { poolMax: 4, isolationLevel: 'READ COMMITTED' });
    releasers.add('database', () => db.destroy());
    const connection = new AmqpConnection(config.amqp, {
      logger,
      name: `cronq-results ${config.host}.${process.pid}`,
    });
    releasers.add('amqp connection', () => connection.close());
    const publisher = new ConfirmPublisher(connection, logger);
    releasers.add('dead-letter publisher', () => publisher.close());
    const service = new ResultsService({
      db,
      connection,
      publisher,
      config: config.results,
      logger,
    });
    releasers.add('results consumer', () => service.stop());
    const abort = new AbortController();
    releasers.add('startup', () => abort.abort());
    stopOnSignals(() => releasers.releaseAll(), logger);

    // Migrations are idempotent and safe to run concurrently, so the order
    // in which an operator starts the processes does not matter. A database
    // that is not up yet is waited for, not a reason to exit.
    const backoff = exponentialBackoff(500, 15_000);
    for (let attempt = 0; !abort.signal.aborted; attempt += 1) {
      try {
        await migrate(db);
        break;
      } catch (err) {
        if (!isTransientDbError(err)) throw err;
        const delay = backoff.delay(attempt);
        if (attempt === 0)
          logger.warn(
            {
              err: (err as Error).message,
              nextRetryAt: new Date(Date.now() + delay).toISOString(),
            },
            'database unavailable; waiting for it',
          );
        await sleep(delay, abort.signal);
      }
    }
    if (abort.signal.aborted) return;
    await service.start();
  });
  await runCli(program, argv);
}
