/**
 * A cronq-injector wired as src/cli/injector.ts wires it, that kills itself
 * (SIGKILL) the moment the Injector emits the event named by its argument:
 * `batch:committed` (a claim is committed, nothing of it published) or
 * `batch:confirmed` (the broker has the batch, published_at is not
 * written). Listeners run synchronously at that point, so the process dies
 * exactly there. Run with tsx by test/integration/injector-crash.test.ts;
 * configured by the same environment as the real command.
 */
import { AmqpConnection, ConfirmPublisher } from '../../src/core/amqp';
import { loadConfig } from '../../src/core/config';
import { createDb } from '../../src/core/db';
import { createLogger } from '../../src/core/logger';
import { declareTopology } from '../../src/core/topology';
import { Injector } from '../../src/injector';
import { migrateWhenReachable } from '../../src/core/migrate';

const CRASH_POINTS = ['batch:committed', 'batch:confirmed'] as const;

async function main(): Promise<void> {
  const at = process.argv[2] as (typeof CRASH_POINTS)[number];
  if (!CRASH_POINTS.includes(at)) {
    throw new Error(`crash point must be one of ${CRASH_POINTS.join(', ')}, got ${at}`);
  }
  const config = loadConfig(process.env);
  const logger = createLogger({
    component: 'injector',
    level: config.log.level,
    format: config.log.format,
  });
  const db = createDb(config.database, { poolMax: 6 });
  const claimant = `crash-test.${process.pid}`;
  const connection = new AmqpConnection(config.amqp, { logger, name: claimant });
  const publisher = new ConfirmPublisher(connection, logger);
  const injector = new Injector({
    db,
    connection,
    publisher,
    settings: config.injector,
    claimant,
    logger,
  });
  injector.once(at, () => process.kill(process.pid, 'SIGKILL'));
  await migrateWhenReachable(db, { logger, signal: new AbortController().signal });
  await connection.onConnect((conn) =>
    declareTopology(conn, { type: connection.queueType, vhost: connection.vhost }),
  );
  connection.start();
  await injector.start();
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
