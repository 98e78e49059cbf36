import { runCli } from '../common';
import { ApiError, oneLine } from './api-client';
import { sseEvents } from './sse';
import { CronqError } from '../../core/errors';
import type { ApiClient } from './api-client';
import { clientOf, opsCommand, runIdArg } from './command';
import { waitForEnd } from './run-now';

/** The server sends a keepalive every 15 s: this long without a byte, the stream is dead. */
const LIVE_IDLE_MS = 45_000;
/** How long --follow waits, after the live end, for the run's result to be stored. */
const STORED_WAIT_MS = 10_000;

interface RunWithOutput {
  id: string;
  status: string;
  output_tail: string | null;
  output_cut: boolean;
}

/**
 * `cronq logs RUN [--follow]`: the output the run stored (its tail, as the
 * run page shows it); --follow streams a running run's output live.
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
      const r = await readRun(api, runId);
      if (opts.follow && (r.status === 'queued' || r.status === 'running'))
        return follow(api, runId);
      printTail(r);
    });
  await runCli(program, argv);
}

/**
 * Print the run's output as it is written (GET /api/runs/<id>/live) until
 * it ends; a server without the live route makes it wait for the end and
 * print the stored output instead.
 */
async function follow(api: ApiClient, runId: string): Promise<void> {
  let res: Response;
  const abort = new AbortController();
  try {
    res = await api.open(`api/runs/${runId}/live`, 'text/event-stream', abort.signal);
  } catch (err) {
    if (err instanceof ApiError && err.status === 404 && /no such API route/.test(err.message)) {
      await waitForEnd(api, runId);
      return printTail(await readRun(api, runId));
    }
    if (err instanceof ApiError) throw new CronqError(`${err.status}: ${err.message}`);
    throw err;
  }
  const events = sseEvents(res.body as AsyncIterable<Uint8Array>, {
    idle: { ms: LIVE_IDLE_MS, abort },
  });
  for await (const e of events) {
    let d: { text?: unknown; status?: unknown; message?: unknown };
    try {
      d = JSON.parse(e.data) as typeof d;
    } catch {
      if (e.event === 'output' || e.event === 'end')
        throw new CronqError(`the live stream sent an ${e.event} event that is not JSON`);
      continue;
    }
    if (e.event === 'output' && typeof d.text === 'string') process.stdout.write(d.text);
    else if (e.event === 'end') {
      process.stderr.write(`run ${runId} ${oneLine(String(d.status), 40)}\n`);
      // The end comes live from the runner; the stored result a moment later.
      // Returning once it is stored lets the next command see it.
      if ((await waitForEnd(api, runId, STORED_WAIT_MS)) === undefined)
        process.stderr.write(
          `its result is not stored yet after ${STORED_WAIT_MS / 1000} s (is cronq-results running?)\n`,
        );
      return;
    } else if (e.event === 'unavailable')
      throw new CronqError(`live output unavailable: ${oneLine(String(d.message))}`);
  }
  throw new CronqError('the live stream ended before the run did');
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
