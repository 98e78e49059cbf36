import { CronqError } from '../../core/errors';
import { runCli } from '../common';
import { ApiError, oneLine } from './api-client';
import { clientOf, opsCommand, printJson, runIdArg } from './command';

/** `cronq kill RUN`: POST /api/runs/<run_id>/kill and print what the server answered. */
export async function run(argv: string[]): Promise<void> {
  const program = opsCommand(
    'kill',
    'Kill a run: the runner holding it ends its process group (SIGTERM, then SIGKILL after CRONQ_KILL_GRACE_SECONDS); a run not started yet never starts.',
    '0 kill accepted, 1 refused (unknown run 404, already ended 409, broker unavailable 503) or unreachable, 2 bad usage.',
  )
    .argument('<run>', 'the run id (32 hexadecimal digits, as `cronq runs` lists them)')
    .option('--json', "print the server's answer as JSON")
    .action(async (raw: string, opts: { url?: string; json?: boolean }) => {
      const runId = runIdArg(raw);
      const api = clientOf(opts);
      let answer: { status?: unknown; data?: { run?: { status?: unknown } }; message?: unknown };
      try {
        answer = await api.post(`api/runs/${runId}/kill`);
      } catch (err) {
        // One line for every refusal (404, 409 with the run's status, 503): exit 1.
        if (err instanceof ApiError) throw new CronqError(`${err.status}: ${err.message}`);
        throw err;
      }
      if (opts.json) return printJson(answer);
      const status = answer.data?.run?.status;
      process.stdout.write(
        `run ${runId}: kill ${typeof status === 'string' ? `requested (${oneLine(status, 40)})` : 'requested'}\n`,
      );
    });
  await runCli(program, argv);
}
