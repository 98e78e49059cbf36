import { reportFatal } from './common';

/**
 * The umbrella command: `cronq <command> [flags]` runs the same code as the
 * `cronq-<command>` executable, plus `apply` and `dev`, which only it has.
 */
const COMMANDS: Record<string, { module: string; summary: string }> = {
  injector: { module: './injector', summary: 'claim due jobs and publish them' },
  runner: { module: './runner', summary: 'run the commands of one queue' },
  results: { module: './results', summary: 'write results into the database' },
  web: { module: './web', summary: 'serve the web admin and JSON API' },
  pruner: { module: './pruner', summary: 'delete old events and runs' },
  validator: { module: './validator', summary: 'validate a category file' },
  apply: { module: './apply', summary: 'PUT a category file to a running web admin' },
  dev: {
    module: './dev',
    summary: 'run injector, results, runner and web together (local development)',
  },
  // The operator's commands, on a running web admin's JSON API (src/cli/ops/).
  jobs: { module: './ops/jobs', summary: 'list the jobs, their next run and last status' },
  runs: { module: './ops/runs', summary: 'list the newest runs (of a job, of a status)' },
  run: { module: './ops/run-now', summary: 'run a job now; --wait for its exit code' },
  kill: { module: './ops/kill', summary: 'kill a run' },
  logs: { module: './ops/logs', summary: "print a run's output; --follow it live" },
  pause: { module: './ops/pause', summary: 'pause a job' },
  resume: { module: './ops/resume', summary: 'resume a paused job' },
};

function usage(): string {
  const width = Math.max(...Object.keys(COMMANDS).map((c) => c.length));
  const lines = Object.entries(COMMANDS).map(
    ([name, c]) => `  ${name.padEnd(width)}  ${c.summary}`,
  );
  return `Usage: cronq <command> [options]\n\nCommands:\n${lines.join('\n')}\n\nRun "cronq <command> --help" for a command's options.\n`;
}

export async function run(argv: string[]): Promise<void> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(usage());
    return;
  }
  const entry = COMMANDS[name];
  if (!entry) {
    process.stderr.write(`cronq: unknown command "${name}"\n${usage()}`);
    process.exit(2);
  }
  let mod: { run(argv: string[]): Promise<void> };
  try {
    // Load only the command asked for: `cronq validator` need not load amqplib or knex.
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    mod = require(entry.module) as typeof mod;
  } catch (err) {
    reportFatal('cronq', err);
  }
  await mod.run(rest);
}
