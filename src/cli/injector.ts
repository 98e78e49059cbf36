import { Command } from 'commander';
import { AmqpConnection, ConfirmPublisher } from '../core/amqp';
import { describeConfig, loadConfig } from '../core/config';
import { createDb } from '../core/db';
import { migrateWhenReachable } from '../core/migrate';
import { InjectorPresence } from '../injector/presence';
import { CRONQ_VERSION } from '../core/version';
import { Daemon } from '../core/daemon';
import { createLogger } from '../core/logger';
import { createMessageSigner } from '../core/signing';
import { declareTopology } from '../core/topology';
import { Injector } from '../injector';
import { wireInjectorMetrics } from '../injector/metrics';
import { metricsParts } from '../core/metrics';
import {
  addCommonOptions,
  commonOverrides,
  METRICS_LISTEN_HELP,
  METRICS_PORT_HELP,
  metricsOverrides,
  runCli,
} from './common';

type Flags = {
  batchSize?: string;
  maxPollMs?: string;
  leadMs?: string;
  metricsPort?: string;
  metricsListen?: string;
  logLevel?: string;
  logFormat?: string;
};

/**
 * cronq-injector: bring the tables up to date (non-destructive), then claim
 * due jobs and publish them until SIGINT/SIGTERM, which finishes the batch
 * in hand and exits 0. Run as many as you like, on any hosts.
 */
export async function run(argv: string[]): Promise<void> {
  const program = addCommonOptions(new Command('cronq-injector'))
    .description(
      'Claim due jobs from the database and publish them to the broker (any number may run at once).',
    )
    .option(
      '--batch-size <n>',
      'most jobs claimed per transaction (CRONQ_INJECTOR_BATCH_SIZE, default 500)',
    )
    .option(
      '--max-poll-ms <ms>',
      'longest wait between looks at the database (CRONQ_INJECTOR_MAX_POLL_MS, default 1000)',
    )
    .option(
      '--lead-ms <ms>',
      'claim and publish runs this far ahead of their occurrence; runners hold them until then (CRONQ_INJECTOR_LEAD_MS, default 500, 0-5000)',
    )
    .option('--metrics-port <port>', METRICS_PORT_HELP)
    .option('--metrics-listen <address>', METRICS_LISTEN_HELP)
    .addHelpText(
      'after',
      '\nEnvironment: DATABASE_URL (or CRONQ_MYSQL), RABBITMQ_URL (or RABBITMQ_HOST/USER/PASS), CRONQ_INJECTOR_*.\nSee docs/injector.md.\n',
    )
    .action(async (flags: Flags) => {
      const overrides = {
        CRONQ_INJECTOR_BATCH_SIZE: flags.batchSize,
        CRONQ_INJECTOR_MAX_POLL_MS: flags.maxPollMs,
        CRONQ_INJECTOR_LEAD_MS: flags.leadMs,
        ...metricsOverrides(flags),
      };
      const config = loadConfig(process.env, { ...commonOverrides(flags), ...overrides });
      const logger = createLogger({
        component: 'injector',
        level: config.log.level,
        format: config.log.format,
      });
      logger.info(describeConfig(config), 'starting');
      const db = createDb(config.database, { poolMax: 6 });
      const claimant = `${config.host}.${process.pid}`.slice(0, 64);
      const connection = new AmqpConnection(config.amqp, {
        logger,
        name: `cronq-injector ${claimant}`,
      });
      const publisher = new ConfirmPublisher(connection, logger);
      const injector = new Injector({
        db,
        connection,
        publisher,
        signer: createMessageSigner(config.signing.keys),
        settings: config.injector,
        claimant,
        logger,
      });
      const presence = new InjectorPresence({ db, claimant, version: CRONQ_VERSION, logger });
      injector.on('cycle:done', (e) => presence.note(e.claimed, injector.lastProbe));
      await new Daemon({
        logger,
        parts: [
          ...metricsParts(config.metrics, config.web.allowedHosts, logger, (r) =>
            wireInjectorMetrics(r, injector),
          ),
          { name: 'database', stop: () => db.destroy() },
          { name: 'amqp connection', stop: () => connection.close() },
          { name: 'amqp publisher', stop: () => publisher.close() },
          { name: 'schema', start: (signal) => migrateWhenReachable(db, { logger, signal }) },
          {
            name: 'broker',
            // The exchange must exist before the first publish, or the channel closes with 404.
            start: async () => {
              await connection.onConnect((conn) =>
                declareTopology(conn, { type: connection.queueType, vhost: connection.vhost }),
              );
              connection.start();
            },
          },
          { name: 'injector', start: () => injector.start(), stop: () => injector.stop() },
        ],
      }).run();
    });
  await runCli(program, argv);
}
