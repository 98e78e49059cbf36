import { Command } from 'commander';
import { AmqpConnection, ConfirmPublisher } from '../core/amqp';
import { describeConfig, loadConfig } from '../core/config';
import { Daemon } from '../core/daemon';
import { createLogger } from '../core/logger';
import { createMessageSigner } from '../core/signing';
import { Runner } from '../runner';
import { PresenceAnnouncer } from '../runner/presence';
import { CRONQ_VERSION } from '../core/version';
import { metricsParts } from '../core/metrics';
import { wireRunnerMetrics } from '../runner/metrics';
import {
  addCommonOptions,
  commonOverrides,
  METRICS_LISTEN_HELP,
  METRICS_PORT_HELP,
  metricsOverrides,
  runCli,
} from './common';

const ENV_HELP = `
Environment (see docs/runner.md):
  RABBITMQ_URL (or RABBITMQ_HOST/_USER/_PASS)  broker(s) to connect to
  LOG_PATH                       job-log folder (default /var/log/cronq; temp folder if not writable)
  CRONQ_RUNNER_LOG_TO_STDOUT     also echo job output to this log
  CRONQ_OUTPUT_TAIL_BYTES        output sent with each result (default 65536)
  CRONQ_DEFAULT_TIMEOUT_SECONDS  timeout of jobs that set none (default 0 = none)
  CRONQ_KILL_GRACE_SECONDS       SIGTERM -> SIGKILL of a timed-out or killed job's process group (default 10)
  CRONQ_SHUTDOWN_GRACE_SECONDS   how long SIGTERM lets running jobs finish (default 30)
  CRONQ_HEARTBEAT_SECONDS        heartbeat period per running job (default 10)
  CRONQ_RESULT_BUFFER_PATH       where unconfirmed results are saved on stop (default LOG_PATH/.results-buffer)
  CRONQ_RESULT_BUFFER_MAX_BYTES  bound of the result buffer (default 268435456)
  CRONQ_HOSTNAME                 x-host of results (default the OS host name)
  CRONQ_JOB_ENV_PASS             CronQ settings jobs may still see: NAME,PREFIX_* (default none)
  CRONQ_JOB_LOG_MAX_BYTES        rotate a job log past this size, keeping .1-.3 (default 10485760; 0 = never)
  CRONQ_MESSAGE_KEY              check job messages' signatures and sign results (docs/security.md)
  CRONQ_MESSAGE_MAX_AGE_SECONDS  oldest signed job message taken (default 3600)
  CRONQ_METRICS_PORT             serve Prometheus /metrics on this port (default off)
  CRONQ_METRICS_LISTEN           its interface (default 127.0.0.1; beyond loopback needs a token)
  CRONQ_METRICS_TOKEN            bearer token a scrape must send (default CRONQ_API_TOKEN)
`;

/** `cronq-runner`: consume one queue and run its commands (docs/runner.md). */
export async function run(argv: string[]): Promise<void> {
  const program = addCommonOptions(
    new Command('cronq-runner')
      .description(
        'Consume a job queue and run each command with /bin/sh -c, publishing its results',
      )
      .option('--queue <name>', 'queue to consume (CRONQ_QUEUE; default cronq_jobs)')
      .option('--concurrency <n>', 'jobs run at once (CRONQ_CONCURRENCY; default 1)')
      .option('--metrics-port <port>', METRICS_PORT_HELP)
      .option('--metrics-listen <address>', METRICS_LISTEN_HELP)
      .addHelpText('after', ENV_HELP),
  ).action(
    async (opts: {
      queue?: string;
      concurrency?: string;
      metricsPort?: string;
      metricsListen?: string;
      logLevel?: string;
      logFormat?: string;
    }) => {
      const config = loadConfig(process.env, {
        ...commonOverrides(opts),
        CRONQ_QUEUE: opts.queue,
        CRONQ_CONCURRENCY: opts.concurrency,
        ...metricsOverrides(opts),
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
      const connection = new AmqpConnection(config.amqp, {
        logger,
        name: `cronq-runner ${config.host}.${process.pid}`,
      });
      const publisher = new ConfirmPublisher(connection, logger);
      const runner = new Runner({
        config: config.runner,
        host: config.host,
        connection,
        publisher,
        logger,
        signer: createMessageSigner(config.signing.keys),
        jobMaxAgeMs: config.signing.jobMaxAgeMs,
      });
      const presence = new PresenceAnnouncer({
        publisher,
        host: config.host,
        queue: config.runner.queue,
        concurrency: config.runner.concurrency,
        version: CRONQ_VERSION,
        running: () => runner.running,
        // Announced as often as running jobs beat: one setting for "how soon is silence noticed".
        periodMs: config.runner.heartbeatMs,
        logger,
        signer: createMessageSigner(config.signing.keys),
      });
      await new Daemon({
        logger,
        parts: [
          ...metricsParts(config.metrics, config.web.allowedHosts, logger, (r) =>
            wireRunnerMetrics(r, runner, config.runner.concurrency),
          ),
          { name: 'amqp connection', stop: () => connection.close() },
          { name: 'result publisher', stop: () => publisher.close() },
          { name: 'runner', start: () => runner.start(), stop: () => runner.stop() },
          { name: 'broker', start: () => connection.start() },
          // Announced once the broker is being reached; the first may be skipped if it is not yet there.
          { name: 'presence', start: () => presence.start(), stop: () => presence.stop() },
        ],
        // Nothing may outlive the runner: a second signal kills the jobs' process groups first.
        onSecondSignal: () => runner.killAll(),
      }).run();
    },
  );
  await runCli(program, argv);
}
