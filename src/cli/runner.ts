import { Command } from 'commander';
import { AmqpConnection, ConfirmPublisher } from '../core/amqp';
import { describeConfig, loadConfig } from '../core/config';
import { Releasers, stopOnSignals } from '../core/lifecycle';
import { createLogger } from '../core/logger';
import { Runner } from '../runner';
import { addCommonOptions, commonOverrides, runCli } from './common';

/** `cronq-runner`: consume one queue and run its commands (docs/runner.md). */
export async function run(argv: string[]): Promise<void> {
  const program = addCommonOptions(
    new Command('cronq-runner')
      .description(
        'Consume a job queue and run each command with /bin/sh -c, publishing its results',
      )
      .option('--queue <name>', 'queue to consume (CRONQ_QUEUE; default cronq_jobs)')
      .option('--concurrency <n>', 'jobs run at once (CRONQ_CONCURRENCY; default 1)'),
  ).action(
    async (opts: {
      queue?: string;
      concurrency?: string;
      logLevel?: string;
      logFormat?: string;
    }) => {
      const config = loadConfig(process.env, {
        ...commonOverrides(opts),
        CRONQ_QUEUE: opts.queue,
        CRONQ_CONCURRENCY: opts.concurrency,
      });
      const logger = createLogger({
        component: 'runner',
        level: config.log.level,
        format: config.log.format,
      });
      logger.info(
        {
          ...describeConfig(config),
          queue: config.runner.queue,
          concurrency: config.runner.concurrency,
        },
        'cronq-runner starting',
      );
      const releasers = new Releasers(logger);
      const connection = new AmqpConnection(config.amqp, {
        logger,
        name: `cronq-runner ${config.host}.${process.pid}`,
      });
      releasers.add('amqp connection', () => connection.close());
      const publisher = new ConfirmPublisher(connection, logger);
      releasers.add('result publisher', () => publisher.close());
      const runner = new Runner({
        config: config.runner,
        host: config.host,
        connection,
        publisher,
        logger,
      });
      releasers.add('runner', () => runner.stop());
      try {
        await runner.start();
      } catch (err) {
        await releasers.releaseAll();
        throw err;
      }
      connection.start();
      stopOnSignals(
        () => releasers.releaseAll(),
        logger,
        (code) => {
          // A second signal: nothing may outlive the runner, so kill the jobs' process groups first.
          if (code !== 0) runner.killAll();
          process.exit(code);
        },
      );
    },
  );
  await runCli(program, argv);
}
