import { runCli } from '../common';
import { ApiError } from './api-client';
import { CronqError } from '../../core/errors';
import type { ApiClient } from './api-client';
import { clientOf, opsCommand, runIdArg } from './command';
import { waitForEnd } from './run-now';

interface RunWithOutput {
  id: string;
  status: string;
  output_tail: string | null;
  output_cut: boolean;
}

/**
 * `cronq logs RUN [--follow]`: the output the run stored (its tail, as the
 * run page shows it); --follow waits for a running run to end first.
 */
export async function run(argv: string[]): Promise<void> {
  const program = opsCommand(
    'logs',
    "Print a run's stored output (the tail the run page shows; the whole log is on the runner host).",
    '0 printed, 1 unknown run, refused by the server or unreachable, 2 bad usage.',
  )
    .argument('<run>', 'the run id (32 hexadecimal digits, as `cronq runs` lists them)')
    .option(
      '--follow',
      'while the run is queued or running, wait for it and print its output; end when it ends',
    )
    .action(async (raw: string, opts: { url?: string; follow?: boolean }) => {
      const runId = runIdArg(raw);
      const api = clientOf(opts);
      let r = await readRun(api, runId);
      if (opts.follow && (r.status === 'queued' || r.status === 'running')) {
        await waitForEnd(api, runId);
        r = await readRun(api, runId);
      }
      printTail(r);
    });
  await runCli(program, argv);
}

async function readRun(api: ApiClient, runId: string): Promise<RunWithOutput> {
  try {
    return (await api.get<{ data: { run: RunWithOutput } }>(`api/runs/${runId}`)).data.run;
  } catch (err) {
    if (err instanceof ApiError && err.status === 404)
      throw new CronqError(`no run with id ${runId}`);
    throw err;
  }
}

/** The job's output as it wrote it (stdout); what is not shown is said on stderr. */
function printTail(r: RunWithOutput): void {
  const tail = r.output_tail ?? '';
  if (r.output_cut)
    process.stderr.write(
      "[… earlier output not stored: the whole log is in the runner host's LOG_PATH …]\n",
    );
  process.stdout.write(tail.endsWith('\n') || tail === '' ? tail : `${tail}\n`);
}
