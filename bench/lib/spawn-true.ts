import { spawn } from 'node:child_process';

/**
 * The unit of work every system in the comparison runs: `/bin/sh -c true`,
 * spawned the way a Node worker spawns it. Resolves with the exit code and
 * the output.
 *
 * By default the output is thrown away (`stdio: 'ignore'`), the cheapest
 * spawn Node has. CronQ cannot do that: it captures stdout and stderr of
 * every run (job log, output tail stored with the run), and the first pipe
 * of a child costs its spawner about 0.4 ms. With BENCH_KEEP_OUTPUT=1
 * (set by `BENCH_E2E_PEER_OUTPUT=1`) the peers do the same work: two pipes,
 * read until they close, the last OUTPUT_TAIL_BYTES kept for the worker to
 * store with the job's result, as a BullMQ or pg-boss user who wants the
 * output in the job history would.
 */
export const KEEP_OUTPUT = process.env.BENCH_KEEP_OUTPUT === '1';
export const OUTPUT_TAIL_BYTES = 4096;

export interface ShellResult {
  code: number;
  /** The output's last OUTPUT_TAIL_BYTES; '' when output is not kept. */
  output: string;
}

export function runShellTrue(): Promise<ShellResult> {
  return runShell('true', KEEP_OUTPUT);
}

/** `/bin/sh -c <command>`, its output thrown away or its tail kept. */
export function runShell(command: string, keepOutput: boolean): Promise<ShellResult> {
  return new Promise((resolve, reject) => {
    if (!keepOutput) {
      const child = spawn('/bin/sh', ['-c', command], { stdio: 'ignore' });
      child.once('error', reject);
      child.once('exit', (code) => resolve({ code: code ?? -1, output: '' }));
      return;
    }
    const child = spawn('/bin/sh', ['-c', command], { stdio: ['ignore', 'pipe', 'pipe'] });
    const chunks: Buffer[] = [];
    let bytes = 0;
    const keep = (chunk: Buffer) => {
      chunks.push(chunk);
      bytes += chunk.length;
      while (bytes - chunks[0]!.length >= OUTPUT_TAIL_BYTES) bytes -= chunks.shift()!.length;
    };
    child.stdout!.on('data', keep);
    child.stderr!.on('data', keep);
    child.once('error', reject);
    // 'close': the exit and both pipes drained, as CronQ waits for before it reports.
    child.once('close', (code) =>
      resolve({
        code: code ?? -1,
        output: Buffer.concat(chunks).subarray(-OUTPUT_TAIL_BYTES).toString('utf8'),
      }),
    );
  });
}
