import { Command } from 'commander';
import { UsageError } from '../../core/errors';
import { ApiClient } from './api-client';

/**
 * The shape every operator's command shares: --url, the environment it
 * reads (CRONQ_API_URL, CRONQ_API_TOKEN, PORT) and its exit statuses.
 */
export function opsCommand(name: string, description: string, exits: string): Command {
  // `cronq runs | head`, `cronq logs --follow | grep -m1 ...`: a reader that left is not an error.
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exit(0);
    throw err;
  });
  return new Command(`cronq ${name}`)
    .description(description)
    .option(
      '--url <url>',
      'the web admin (CRONQ_API_URL; default http://127.0.0.1:$PORT, PORT default 5000)',
    )
    .addHelpText(
      'after',
      `\nJobs are named by id or by category/name. Environment: CRONQ_API_TOKEN (sent as Authorization: Bearer when set), CRONQ_API_URL, PORT.\nExit status: ${exits}\n`,
    );
}

export const USUAL_EXITS =
  '0 done, 1 refused by the server or unreachable, 2 bad usage or unknown job.';

export function clientOf(opts: { url?: string }): ApiClient {
  return ApiClient.fromOptions(opts);
}

/** A run id as the API takes it: 32 hex digits. */
export function runIdArg(raw: string): string {
  if (!/^[0-9a-fA-F]{32}$/.test(raw))
    throw new UsageError(
      `RUN must be a run id of 32 hexadecimal digits, got "${raw.slice(0, 40)}"`,
    );
  return raw.toLowerCase();
}

/** A whole number from `min` to `max` given to a flag. */
export function intArg(flag: string, raw: string, min: number, max: number): number {
  const n = Number(raw);
  if (!/^\d+$/.test(raw) || n < min || n > max)
    throw new UsageError(
      `${flag} must be a whole number from ${min} to ${max}, got "${raw.slice(0, 40)}"`,
    );
  return n;
}

export function printJson(v: unknown): void {
  process.stdout.write(`${JSON.stringify(v, null, 2)}\n`);
}
