import { Command } from 'commander';
import { loadConfig } from '../core/config';
import { createDb } from '../core/db';
import { createLogger } from '../core/logger';
import { prune } from '../pruner/pruner';
import { resolvePruneOptions, type RawPruneFlags } from '../pruner/options';
import { addCommonOptions, commonOverrides, runCli } from './common';

/**
 * cronq-pruner: delete old events (and the runs that go with them) and old
 * notifications in small chunks. Exactly one of: an id range, "keep the
 * newest N per job", or an age. Prints one line with what it removed;
 * exit 2 on contradictory flags. A command that finishes, not a daemon:
 * its first signal ends the work after the statement in progress and still
 * reports, so it has its own signal rule instead of core/daemon's.
 */
export async function run(argv: string[]): Promise<void> {
  const program = addCommonOptions(new Command('cronq-pruner'))
    .description(
      'Delete old events, finished runs and delivered notifications in bounded chunks (never one long-locking statement).',
    )
    .option('--first <id>', 'lowest event id to delete (with --last)')
    .option('--last <id>', 'highest event id to delete (with --first)')
    .option('--interval <n>', 'ids (range mode) or rows per DELETE statement', undefined)
    .option(
      '--keep <n>',
      'keep the newest N events (and N notifications) of every job, delete the rest',
    )
    .option(
      '--older-than <age>',
      'delete events, finished runs and done notifications older than AGE: ISO 8601 (P30D, PT12H) or 30d, 12h, 90m, 2w',
    )
    .addHelpText(
      'after',
      '\nEnvironment: DATABASE_URL (or CRONQ_MYSQL), CRONQ_LOG_LEVEL, CRONQ_LOG_FORMAT.\n' +
        'Runs are deleted only when final (never queued or running) and left without events.\n' +
        'Notifications only when sent or failed (never pending), with their attempts; --first/--last leaves them.\n' +
        'Examples:\n  cronq-pruner --first 1 --last 500000 --interval 1000\n  cronq-pruner --keep 100\n  cronq-pruner --older-than P30D\n',
    )
    .action(async (flags: RawPruneFlags & { logLevel?: string; logFormat?: string }) => {
      const options = resolvePruneOptions(flags);
      const config = loadConfig(process.env, commonOverrides(flags));
      const logger = createLogger({
        component: 'pruner',
        level: config.log.level,
        format: config.log.format,
      });
      const db = createDb(config.database, { poolMax: 2 });
      // The first signal stops after the statement in progress; what was deleted stays deleted.
      const abort = new AbortController();
      const onSignal = () => (abort.signal.aborted ? process.exit(130) : abort.abort());
      process.on('SIGINT', onSignal);
      process.on('SIGTERM', onSignal);
      try {
        const result = await prune(options, { db, logger, signal: abort.signal });
        const how = result.interrupted ? ' (stopped early by a signal)' : '';
        process.stdout.write(
          `removed ${result.events} events and ${result.runs} runs, ` +
            `${result.notifications} notifications and ${result.notificationAttempts} notification attempts${how}\n`,
        );
        if (result.interrupted) process.exitCode = 130;
      } finally {
        await db.destroy();
      }
    });
  await runCli(program, argv);
}
