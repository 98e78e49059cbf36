import { Command, CommanderError } from 'commander';
import { CronqError } from '../core/errors';

/**
 * Run a commander program: parse `argv` (the arguments after the command
 * name), and turn any error into one readable line on stderr and an exit
 * code (2 for bad configuration or usage, 1 otherwise). Stack traces only
 * with --verbose or DEBUG set.
 */
export async function runCli(program: Command, argv: string[]): Promise<void> {
  program.exitOverride();
  program.configureOutput({ writeErr: (s) => process.stderr.write(s) });
  try {
    await program.parseAsync(argv, { from: 'user' });
  } catch (err) {
    if (err instanceof CommanderError) {
      // --help and --version end here with code 0; usage errors were printed already.
      process.exit(err.exitCode === 1 ? 2 : err.exitCode);
    }
    reportFatal(program.name(), err, verbose(argv));
  }
}

function verbose(argv: string[]): boolean {
  return argv.includes('--verbose') || !!process.env.DEBUG;
}

/** Print `name: message` (and the stack when verbose) and exit with the error's code. */
export function reportFatal(name: string, err: unknown, showStack = !!process.env.DEBUG): never {
  const e = err instanceof Error ? err : new Error(String(err));
  const code = err instanceof CronqError ? err.exitCode : 1;
  process.stderr.write(`${name}: ${e.message}\n`);
  if (showStack && e.stack) process.stderr.write(`${e.stack}\n`);
  process.exit(code);
}

/** The common flags every daemon takes. */
export function addCommonOptions(cmd: Command): Command {
  return cmd
    .option('--verbose', 'print stack traces of fatal errors')
    .option(
      '--log-level <level>',
      'fatal, error, warn, info, debug, trace or silent (CRONQ_LOG_LEVEL)',
    )
    .option('--log-format <format>', 'json or pretty (CRONQ_LOG_FORMAT)');
}

/** Flag values that map onto environment settings, for loadConfig's overrides. */
export function commonOverrides(opts: {
  logLevel?: string;
  logFormat?: string;
}): Record<string, string | undefined> {
  return { CRONQ_LOG_LEVEL: opts.logLevel, CRONQ_LOG_FORMAT: opts.logFormat };
}

/** The --metrics-port and --metrics-listen flags of the injector, runner and results consumer. */
export const METRICS_PORT_HELP =
  'serve Prometheus /metrics on this port (CRONQ_METRICS_PORT; default off)';
export const METRICS_LISTEN_HELP =
  'interface of the /metrics server (CRONQ_METRICS_LISTEN, default 127.0.0.1); non-loopback needs CRONQ_METRICS_TOKEN or CRONQ_API_TOKEN';

export function metricsOverrides(opts: {
  metricsPort?: string;
  metricsListen?: string;
}): Record<string, string | undefined> {
  return { CRONQ_METRICS_PORT: opts.metricsPort, CRONQ_METRICS_LISTEN: opts.metricsListen };
}
