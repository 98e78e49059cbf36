import { Command } from 'commander';
import { AmqpConnection, ConfirmPublisher } from '../core/amqp';
import { describeConfig, loadConfig } from '../core/config';
import { createDb } from '../core/db';
import { migrateWhenReachable } from '../core/migrate';
import { PresenceRecorder } from '../results/presence-recorder';
import { Daemon } from '../core/daemon';
import { createLogger } from '../core/logger';
import { createMessageSigner } from '../core/signing';
import { ResultsService } from '../results';
import { KillAgain } from '../results/kill-again';
import { shortError } from '../results/errors';
import { ControlPublisher } from '../core/control';
import { MissedNotices, NotifySender, OverdueCheck, recordGlobalTargets } from '../results/notify';
import { metricsParts } from '../core/metrics';
import { wireResultsMetrics } from '../results/metrics';
import {
  addCommonOptions,
  commonOverrides,
  METRICS_LISTEN_HELP,
  METRICS_PORT_HELP,
  metricsOverrides,
  runCli,
} from './common';

interface ResultsFlags {
  prefetch?: string;
  metricsPort?: string;
  metricsListen?: string;
  logLevel?: string;
  logFormat?: string;
}

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
      )
      .option('--metrics-port <port>', METRICS_PORT_HELP)
      .option('--metrics-listen <address>', METRICS_LISTEN_HELP),
  ).action(async (opts: ResultsFlags) => {
    const config = loadConfig(process.env, {
      ...commonOverrides(opts),
      CRONQ_RESULTS_PREFETCH: opts.prefetch,
      ...metricsOverrides(opts),
    });
    const logger = createLogger({
      component: 'results',
      level: config.log.level,
      format: config.log.format,
    });
    logger.info({ ...describeConfig(config), ...config.results }, 'cronq-results starting');
    // READ COMMITTED: see src/results/store.ts for why it is safe and why it is chosen.
    const db = createDb(config.database, { poolMax: 4, isolationLevel: 'READ COMMITTED' });
    const connection = new AmqpConnection(config.amqp, {
      logger,
      name: `cronq-results ${config.host}.${process.pid}`,
    });
    const publisher = new ConfirmPublisher(connection, logger);
    const control = new ControlPublisher(connection, publisher);
    const killAgain = new KillAgain(control, logger);
    const service = new ResultsService({
      db,
      connection,
      publisher,
      config: config.results,
      // The runners' output-tail setting bounds what a result may carry (docs/results.md).
      outputTailBytes: config.runner.outputTailBytes,
      logger,
      signer: createMessageSigner(config.signing.keys),
      notifyTargets: config.notify.targets,
      onStartedAfterKill: (runIds) => killAgain.send(runIds),
    });
    // Notifications are sent, and overdue jobs found, in their own loops (docs/notifications.md).
    const sender = new NotifySender({
      db,
      config: config.notify,
      logger,
      busy: () => service.busy,
    });
    const overdue = new OverdueCheck({
      db,
      targets: config.notify.targets,
      everyMs: config.notify.overdueCheckMs,
      logger,
    });
    // Runs the injector recorded missed itself: their notices, taken every second.
    const missed = new MissedNotices({ db, targets: config.notify.targets, logger });
    const presence = new PresenceRecorder({
      db,
      connection,
      logger,
      signer: createMessageSigner(config.signing.keys),
    });
    await new Daemon({
      logger,
      parts: [
        ...metricsParts(config.metrics, config.web.allowedHosts, logger, (r) =>
          wireResultsMetrics(r, service, missed),
        ),
        { name: 'database', stop: () => db.destroy() },
        { name: 'amqp connection', stop: () => connection.close() },
        { name: 'dead-letter publisher', stop: () => publisher.close() },
        { name: 'schema', start: (signal) => migrateWhenReachable(db, { logger, signal }) },
        // For the job pages: the web has not these settings (docs/notifications.md).
        {
          name: 'targets for every job',
          start: () => recordGlobalTargets(db, config.notify.targets, logger),
        },
        {
          name: 'kill orders for runs started after their kill',
          start: () =>
            control.start({
              onDeclareError: (err) =>
                logger.warn(
                  { err: shortError(err) },
                  'cannot declare cronq.control: a run killed before it started that a newer runner starts is not killed again (docs/security.md)',
                ),
            }),
        },
        { name: 'results consumer', start: () => service.start(), stop: () => service.stop() },
        { name: 'runner presence', start: () => presence.start(), stop: () => presence.stop() },
        { name: 'notification sender', start: () => sender.start(), stop: () => sender.stop() },
        { name: 'overdue check', start: () => overdue.start(), stop: () => overdue.stop() },
        { name: 'missed-run notices', start: () => missed.start(), stop: () => missed.stop() },
      ],
    }).run();
  });
  await runCli(program, argv);
}
