import { Command } from 'commander';
import { AmqpConnection, ConfirmPublisher } from '../core/amqp';
import { ControlPublisher } from '../core/control';
import { addCommonOptions, commonOverrides, runCli } from './common';
import { describeConfig, isLoopback, loadConfig } from '../core/config';
import { createDb, type Knex } from '../core/db';
import { errorText } from '../core/error-text';
import { migrateWhenReachable } from '../core/migrate';
import { ConfigError } from '../core/errors';
import { Daemon } from '../core/daemon';
import { createLogger, type Logger } from '../core/logger';
import { WebServer } from '../web/server';
import { OutputHub } from '../web/live/output-hub';

interface WebFlags {
  port?: string;
  listen?: string;
  logLevel?: string;
  logFormat?: string;
}

export async function run(argv: string[]): Promise<void> {
  const program = addCommonOptions(
    new Command('cronq-web')
      .description(
        'Serve the CronQ web admin and JSON API (the database; the broker only for Kill, Run now at once and live output).',
      )
      .option('--port <port>', 'TCP port (PORT, default 5000)')
      .option(
        '--listen <address>',
        'interface to bind (LISTEN_INTERFACE, default 127.0.0.1); non-loopback needs CRONQ_API_TOKEN',
      ),
  ).action(async (flags: WebFlags) => {
    const config = loadConfig(process.env, {
      ...commonOverrides(flags),
      PORT: flags.port,
      LISTEN_INTERFACE: flags.listen,
    });
    const host = config.web.listenInterface;
    // The API can make every runner execute any command: never expose it unauthenticated.
    if (!config.web.apiToken && !isLoopback(host)) {
      throw new ConfigError(
        `LISTEN_INTERFACE=${host} is not a loopback address: set CRONQ_API_TOKEN to serve beyond this host`,
      );
    }
    const logger = createLogger({
      component: 'web',
      level: config.log.level,
      format: config.log.format,
    });
    logger.info({ config: describeConfig(config) }, 'starting');
    const db = createDb(config.database, { poolMax: 10 });
    // Kill and *Run now at once* go over the broker; pages and reads never wait for it.
    const connection = new AmqpConnection(config.amqp, {
      logger,
      name: `cronq-web ${config.host}.${process.pid}`,
    });
    const publisher = new ConfirmPublisher(connection, logger);
    const control = new ControlPublisher(connection, publisher);
    // Live output: watch orders out, the runners' output in (src/web/live/).
    const live = new OutputHub(connection, control, logger);
    const server = new WebServer(
      { db, config, logger, control, live, broker: connection },
      { port: config.web.port, host },
    );
    const started = await new Daemon({
      logger,
      parts: [
        { name: 'database', stop: () => db.destroy() },
        { name: 'amqp connection', stop: () => connection.close() },
        { name: 'control publisher', stop: () => publisher.close() },
        {
          name: 'broker',
          // In the background: a broker that is away only makes kill answer 503.
          start: async () => {
            await control.start();
            connection.start();
          },
        },
        { name: 'live output', start: () => live.start(), stop: () => live.stop() },
        { name: 'schema', start: (signal) => migrateOrServeAnyway(db, logger, signal) },
        { name: 'http server', start: () => server.start(), stop: () => server.stop() },
      ],
    }).run();
    if (!started) return;
    const a = server.address();
    // A name not allowed is answered 421 (DNS rebinding): say which names are served.
    logger.info(
      { allowedHosts: ['localhost', '127.0.0.1', '[::1]', host, ...config.web.allowedHosts] },
      'answering only requests whose Host is one of these (CRONQ_ALLOWED_HOSTS adds names)',
    );
    if (!isLoopback(host) && config.web.allowedHosts.length === 0)
      logger.warn(
        { host },
        'listening beyond loopback without CRONQ_ALLOWED_HOSTS: requests naming this server by any other name or address get 421',
      );
    if (!config.web.apiToken)
      logger.info(
        { host },
        'no CRONQ_API_TOKEN: listening on loopback only, without authentication',
      );
    logger.info(
      { host: a?.address, port: a?.port },
      `listening on http://${host.includes(':') ? `[${host}]` : host}:${a?.port}`,
    );
  });
  await runCli(program, argv);
}

/**
 * The web needs no schema to answer: when the database is away it serves
 * anyway, /_status answers 503 and the pages say the database is away. So
 * one attempt, and a failure is logged, not fatal; the injector and the
 * results consumer, which cannot work without the schema, wait for it.
 */
async function migrateOrServeAnyway(db: Knex, logger: Logger, signal: AbortSignal): Promise<void> {
  try {
    await migrateWhenReachable(db, { logger, signal, waitForDatabase: false });
  } catch (err) {
    logger.error({ err: errorText(err) }, 'could not migrate the database; serving anyway');
  }
}
