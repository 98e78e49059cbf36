import { spawn } from 'node:child_process';

/**
 * The unit of work every system in the comparison runs: `/bin/sh -c true`,
 * spawned the way a Node worker spawns it. Resolves with the exit code.
 */
export function runShellTrue(): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn('/bin/sh', ['-c', 'true'], { stdio: 'ignore' });
    child.once('error', reject);
    child.once('exit', (code) => resolve(code ?? -1));
  });
}
