import { runCli } from '../common';
import { oneLine } from './api-client';
import { USUAL_EXITS, clientOf, opsCommand, printJson } from './command';
import { resolveJob } from './job-ref';

/** `cronq pause JOB` and `cronq resume JOB`: POST /api/jobs/<id>/pause|resume. */
export async function pauseOrResume(action: 'pause' | 'resume', argv: string[]): Promise<void> {
  const program = opsCommand(
    action,
    action === 'pause'
      ? 'Pause a job: it starts no new scheduled runs until resumed (runs already started go on).'
      : 'Resume a paused job: its next occurrence runs as scheduled.',
    USUAL_EXITS,
  )
    .argument('<job>', 'the job (id or category/name)')
    .option('--json', "print the server's answer as JSON")
    .action(async (ref: string, opts: { url?: string; json?: boolean }) => {
      const api = clientOf(opts);
      const job = await resolveJob(api, ref);
      const answer = await api.post<{
        data: { job: { paused: boolean; paused_by: string | null } };
      }>(`api/jobs/${job.id}/${action}`);
      if (opts.json) printJson(answer.data.job);
      else
        process.stdout.write(
          `job ${job.id} (${oneLine(`${job.category?.name ?? '-'}/${job.name}`, 600)}) ${answer.data.job.paused ? 'paused' : 'resumed'}\n`,
        );
    });
  await runCli(program, argv);
}
