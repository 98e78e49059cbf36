import path from 'node:path';
import { Command } from 'commander';
import { isLoopback, loadConfig } from '../core/config';
import { checkBroker, devLogPath, prepareDatabase, waitForWeb } from '../dev/preflight';
import { Supervisor, type RoleSpec } from '../dev/supervisor';
import { UsageError } from '../core/errors';
import { runCli } from './common';

const ROLES: RoleSpec[] = [
  { name: 'injector', command: 'cronq-injector' },
  { name: 'results', command: 'cronq-results' },
  { name: 'runner', command: 'cronq-runner' },
  { name: 'web', command: 'cronq-web' },
];

/**
 * `cronq dev` (= `npm start`): one command for a person at a terminal.
 * Creates and migrates the database, checks the broker, then runs the four
 * daemons as children with prefixed log lines until Ctrl-C.
 */
export async function run(argv: string[]): Promise<void> {
  const program = new Command('cronq dev')
    .description(
      'Run injector, results, runner (default queue) and web together against local MariaDB and RabbitMQ.',
    )
    .option(
      '--grace <seconds>',
      'how long the daemons get to stop after Ctrl-C before they are killed',
      '10',
    )
    .option('--no-color', 'do not colour the role prefixes')
    .addHelpText(
      'after',
      '\nEnvironment: every daemon setting (DATABASE_URL, RABBITMQ_URL, PORT, LISTEN_INTERFACE, LOG_PATH, CRONQ_*),\n' +
        'passed to the children unchanged. LOG_PATH defaults to /var/log/cronq, or a temp folder when that is not writable.\n' +
        'Log lines are pretty on a terminal (CRONQ_LOG_FORMAT=json to keep JSON). The first Ctrl-C stops every daemon\n' +
        'in order; a second one kills them at once. If one daemon exits by itself, the others are stopped too (exit 1).\n',
    )
    .action(async (opts: { grace: string; color: boolean }) => {
      const grace = Number(opts.grace);
      if (!Number.isFinite(grace) || grace < 0)
        throw new UsageError(`--grace must be a number of seconds, got "${opts.grace}"`);
      const tty = !!process.stdout.isTTY;
      const env: NodeJS.ProcessEnv = { ...process.env, LOG_PATH: devLogPath(process.env) };
      if (env.CRONQ_LOG_FORMAT === undefined && tty) env.CRONQ_LOG_FORMAT = 'pretty';
      const config = loadConfig(env);
      const say = (line: string) =>
        process.stdout.write(
          `${opts.color && tty ? '\u001b[1m[dev]\u001b[0m' : '[dev]'} ${line}\n`,
        );

      await prepareDatabase(config);
      await checkBroker(config);
      say(`database "${config.database.database}" ready; job logs in ${env.LOG_PATH}`);

      const supervisor = new Supervisor({
        roles: ROLES,
        env,
        binDir: path.resolve(__dirname, '..', '..', 'bin'),
        stdout: process.stdout,
        stderr: process.stderr,
        colour: opts.color && tty,
        graceMs: grace * 1000,
        say,
      });
      const abort = new AbortController();
      let exitCode = 0;
      const finished = new Promise<void>((resolve) => {
        const stop = (why: string, code: number) => {
          if (abort.signal.aborted) return;
          abort.abort();
          exitCode = code;
          say(why);
          void supervisor.stop().then(resolve);
        };
        supervisor.on('failed', (role: string, r: { code: number | null; signal: string | null }) =>
          stop(
            `${role} exited unexpectedly (${r.signal ? `signal ${r.signal}` : `code ${r.code}`}); stopping the others`,
            1,
          ),
        );
        const onSignal = (signal: NodeJS.Signals) => {
          if (abort.signal.aborted) {
            say('second signal: killing every daemon now');
            supervisor.kill();
            return;
          }
          stop(`${signal}: stopping every daemon (again to kill them at once)`, 0);
        };
        process.on('SIGINT', onSignal);
        process.on('SIGTERM', onSignal);
        process.on('SIGHUP', onSignal);
      });
      supervisor.start();

      const host =
        isLoopback(config.web.listenInterface) ||
        ['0.0.0.0', '::', ''].includes(config.web.listenInterface)
          ? '127.0.0.1'
          : config.web.listenInterface;
      const url = `http://${host.includes(':') ? `[${host}]` : host}:${config.web.port}/`;
      void waitForWeb(url, abort.signal).then((up) => {
        if (up && !abort.signal.aborted) say(`CronQ is running. Admin: ${url}  (Ctrl-C stops it)`);
        else if (!abort.signal.aborted)
          say(`the web admin did not answer on ${url} yet; see the [web] lines above`);
      });

      await finished;
      say(exitCode === 0 ? 'stopped' : 'stopped after a failure');
      process.exit(exitCode);
    });
  await runCli(program, argv);
}
