import type { Knex } from '../core/db';
import { lineRangesTest, splitLines } from '../core/output-lines';

/**
 * The run page's output viewer: the stored tail as lines, each marked when
 * it came from stderr; what was cut, in bytes; and the tail as a file to
 * download, named after the job and the run.
 */

export interface OutputLine {
  text: string;
  err: boolean;
}

/** The tail's lines, stderr's marked (numbers from the end, so a tail cut at the front still lines up). */
export function outputLines(tail: string | null, stderrLines: string | null): OutputLine[] {
  const lines = splitLines(tail ?? '');
  const isErr = lineRangesTest(stderrLines);
  return lines.map((text, i) => ({ text, err: isErr(lines.length - i) }));
}

/** "1.2 MB", "64 KiB" style sizes for the cut note. */
export function bytesText(n: number): string {
  if (n < 1024) return `${n} bytes`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(n < 10 * 1024 ? 1 : 0)} KiB`;
  if (n < 1024 ** 3) return `${(n / 1024 ** 2).toFixed(1)} MiB`;
  return `${(n / 1024 ** 3).toFixed(1)} GiB`;
}

/** What the stored tail lacks: the run wrote `total` bytes, `kept` are stored. Null when nothing was cut or it is not known. */
export function cutNote(total: number | null, kept: number | null): string | null {
  if (total === null || kept === null || total <= kept) return null;
  return `The run wrote ${bytesText(total)} of output; the last ${bytesText(kept)} were kept, so the first ${bytesText(total - kept)} are not here (the job log on its runner has all of it).`;
}

/** A file name for the download: the job name's letters, digits, dots and dashes, and the run's id. */
export function outputFileName(jobName: string, runId: string): string {
  const base = jobName
    .replace(/[^A-Za-z0-9._-]+/g, '-')
    .replace(/^[-.]+|-+$/g, '')
    .slice(0, 80);
  return `${base || 'run'}-${runId.slice(0, 8)}.txt`;
}

/** The whole stored tail of a run (not the page's cut), or undefined when there is no such run. */
export async function storedOutput(
  db: Knex,
  runId: string,
): Promise<{ job_name: string | null; output_tail: string | null } | undefined> {
  return (await db('runs').where({ run_id: runId }).first('job_name', 'output_tail')) as
    { job_name: string | null; output_tail: string | null } | undefined;
}
