/**
 * `npm run bench`: every benchmark of the project in one run, on one
 * machine, one after another (never two at once: they would measure each
 * other). Writes bench/results/<timestamp>.json and .md and prints the table.
 *
 *   npm run bench                         everything
 *   npm run bench -- --only e2e,scale     a subset (injector, runner, results, web, control, scale, e2e, capacity)
 *
 * Component benchmarks (bench/injector.ts, runner.ts, results.ts, web.ts)
 * are owned by their components and run as child processes with a clean
 * environment; their JSON is kept as printed. A missing or failing one is
 * recorded as such and the run goes on.
 */
import { spawn, execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { holdSharedLock } from './lib/lock';
import { benchName } from './lib/services';
import { componentTable, cpuTable, e2eTable, scaleTable } from './lib/report';
import { capacityTable } from './capacity/report';

const ROOT = path.resolve(__dirname, '..');
const COMPONENTS = ['injector', 'runner', 'results', 'web', 'control'];
const ALL = ['scale', 'e2e', 'capacity', ...COMPONENTS];
const TIMEOUT_MS = Number(process.env.BENCH_TIMEOUT_MS ?? 10 * 60_000);

function log(msg: string): void {
  process.stderr.write(`[bench ${new Date().toISOString()}] ${msg}\n`);
}

/** The environment a component benchmark gets: none of the caller's CronQ/service/bench settings. */
function cleanEnv(extra: Record<string, string> = {}): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (v === undefined || /^(CRONQ_|RABBITMQ_|BENCH_|DATABASE_URL$|LOG_PATH$|PORT$)/.test(k))
      continue;
    env[k] = v;
  }
  return { ...env, ...extra };
}

/** The last top-level JSON value printed: benchmarks print one document, maybe after other lines. */
function parseJsonOutput(out: string): unknown {
  const trimmed = out.trim();
  try {
    return JSON.parse(trimmed);
  } catch {
    for (let i = trimmed.lastIndexOf('\n{'); i >= 0; i = trimmed.lastIndexOf('\n{', i - 1)) {
      try {
        return JSON.parse(trimmed.slice(i + 1));
      } catch {
        // keep looking further up
      }
    }
    const start = trimmed.indexOf('{');
    return JSON.parse(trimmed.slice(start));
  }
}

async function runBench(
  file: string,
  env: Record<string, string>,
  lock: boolean,
  timeoutMs = TIMEOUT_MS,
  args: string[] = [],
): Promise<{ result: unknown; seconds: number }> {
  const release = lock ? await holdSharedLock() : () => undefined;
  const t0 = Date.now();
  try {
    const out = await new Promise<string>((resolve, reject) => {
      const child = spawn(process.execPath, ['--import', 'tsx', file, ...args], {
        cwd: ROOT,
        env,
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d: Buffer) => (stdout += d.toString('utf8')));
      child.stderr.on('data', (d: Buffer) => {
        const text = d.toString('utf8');
        stderr += text;
        if (process.env.BENCH_VERBOSE === '1') process.stderr.write(d);
        else
          for (const line of text.split('\n'))
            if (line.startsWith('[bench ')) process.stderr.write(`  ${line}\n`);
      });
      const timer = setTimeout(() => {
        log(`${path.basename(file)}: no result after ${timeoutMs / 1000} s, stopping it`);
        child.kill('SIGTERM');
        setTimeout(() => child.kill('SIGKILL'), 10_000).unref();
      }, timeoutMs);
      child.on('exit', (code, signal) => {
        clearTimeout(timer);
        if (code === 0) resolve(stdout);
        else
          reject(
            new Error(
              `${path.basename(file)} exited with ${code ?? signal}: ${stderr.trim().split('\n').slice(-25).join(' | ')}`,
            ),
          );
      });
    });
    return { result: parseJsonOutput(out), seconds: (Date.now() - t0) / 1000 };
  } finally {
    release();
  }
}

function versions(): Record<string, string> {
  const v: Record<string, string> = { node: process.version };
  const tryCmd = (name: string, cmd: string, args: string[]) => {
    try {
      v[name] = execFileSync(cmd, args, { encoding: 'utf8', timeout: 10_000 })
        .trim()
        .split('\n')[0]!;
    } catch {
      v[name] = 'unknown';
    }
  };
  tryCmd('mariadb', 'mysql', ['-h', '127.0.0.1', '-u', 'root', '-N', '-e', 'SELECT VERSION()']);
  tryCmd('postgres', 'psql', ['-h', '127.0.0.1', '-U', 'postgres', '-tAc', 'SHOW server_version']);
  try {
    const info = execFileSync('redis-cli', ['INFO', 'server'], {
      encoding: 'utf8',
      timeout: 10_000,
    });
    v.redis = /redis_version:(\S+)/.exec(info)?.[1] ?? 'unknown';
  } catch {
    v.redis = 'unknown';
  }
  v.rabbitmq = (() => {
    try {
      const out = execFileSync('rabbitmqctl', ['version'], { encoding: 'utf8', timeout: 30_000 });
      return out.trim();
    } catch {
      return 'unknown';
    }
  })();
  return v;
}

async function main(): Promise<void> {
  const onlyArg = process.argv.indexOf('--only');
  const only = onlyArg >= 0 ? (process.argv[onlyArg + 1] ?? '').split(',') : ALL;
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  const report: Record<string, unknown> = {
    startedAt: new Date().toISOString(),
    machine: {
      cpus: os.cpus().length,
      cpuModel: os.cpus()[0]?.model,
      memGB: Math.round(os.totalmem() / 2 ** 30),
      loadavgAtStart: os.loadavg(),
      versions: versions(),
    },
    components: {},
  };

  log('building (npm run build): the CronQ commands load dist/');
  try {
    execFileSync('npm', ['run', 'build'], { cwd: ROOT, stdio: 'ignore', timeout: 300_000 });
  } catch {
    log('build reported errors (tsc still emits); going on');
  }

  const dir = path.join(__dirname, 'results');
  mkdirSync(dir, { recursive: true });
  // Written after every stage, so a run cut short still leaves what it measured.
  const save = () => {
    report.finishedAt = new Date().toISOString();
    (report.machine as Record<string, unknown>).loadavgAtEnd = os.loadavg();
    writeFileSync(path.join(dir, `${stamp}.json`), JSON.stringify(report, null, 2) + '\n');
    writeFileSync(path.join(dir, `${stamp}.md`), markdown(report));
  };
  const components = report.components as Record<string, unknown>;
  // Scale (seconds), then the end-to-end comparison (the longest, and what the
  // rest is read against), then the components: a run cut short by a hanging
  // component benchmark still has the comparison.
  if (only.includes('scale')) {
    log('scale: injector cycle cost at 10,000 and 100,000 jobs');
    // Tried twice: it takes seconds, and it reads src/ directly, so a file
    // half-saved by someone working in the tree can fail one attempt.
    for (let attempt = 1; attempt <= 2; attempt++) {
      try {
        report.scale = (
          await runBench(path.join(__dirname, 'scale.ts'), cleanEnv(pick(/^BENCH_SCALE_/)), true)
        ).result;
        break;
      } catch (err) {
        report.scale = { error: (err as Error).message };
        log(`scale: attempt ${attempt} FAILED ${(err as Error).message}`);
      }
    }
    save();
  }
  if (only.includes('e2e')) {
    log('e2e: CronQ vs bare pipeline vs BullMQ vs pg-boss (takes a while)');
    try {
      // e2e takes the lock itself, per system, so a disruptive test may slip in between systems.
      const env = cleanEnv({
        ...pick(/^BENCH_E2E_|^BENCH_PGBOSS_|^BENCH_CRONQ_|^BENCH_NO_LOCK$/),
        BENCH_VERBOSE: process.env.BENCH_VERBOSE ?? '',
      });
      // Its own deadlines guard each system; this one only catches a wedged process.
      const reps = Number(env.BENCH_E2E_REPS ?? 3);
      const steady = Number(env.BENCH_E2E_STEADY_SECONDS ?? 60);
      const timeout = (reps * 4 * (steady + 150) + 300) * 1000;
      report.e2e = (await runBench(path.join(__dirname, 'e2e.ts'), env, false, timeout)).result;
    } catch (err) {
      report.e2e = { error: (err as Error).message };
      log(`e2e: FAILED ${(err as Error).message}`);
    }
    save();
  }
  if (only.includes('capacity')) {
    log(
      'capacity: the central tier (injector + broker + results + MariaDB) and the peers, classic and quorum',
    );
    try {
      report.capacity = (
        await runBench(path.join(__dirname, 'capacity.ts'), cleanEnv(), true)
      ).result;
    } catch (err) {
      report.capacity = { error: (err as Error).message };
      log(`capacity: FAILED ${(err as Error).message}`);
    }
    save();
  }
  for (const name of COMPONENTS.filter((n) => only.includes(n))) {
    const file = path.join(__dirname, `${name}.ts`);
    if (!existsSync(file)) {
      components[name] = { error: `bench/${name}.ts does not exist yet` };
      continue;
    }
    log(`${name}: running bench/${name}.ts`);
    try {
      // web.ts takes its database from DATABASE_URL (default a fixed name): give it one of its own.
      // BENCH_WEB_DATABASE_URL names a database already seeded by `bench/web.ts --keep`
      // (seeding 1,000,000 runs takes minutes); it is reused and kept.
      const seeded = name === 'web' ? process.env.BENCH_WEB_DATABASE_URL : undefined;
      const extra: Record<string, string> =
        name === 'web'
          ? {
              DATABASE_URL: seeded ?? `mysql://root@127.0.0.1:3306/${benchName('cronq_bench_web')}`,
            }
          : {};
      const r = await runBench(file, cleanEnv(extra), true, TIMEOUT_MS, seeded ? ['--keep'] : []);
      components[name] = r.result;
      log(`${name}: done in ${r.seconds.toFixed(0)} s`);
    } catch (err) {
      components[name] = { error: (err as Error).message };
      log(`${name}: FAILED ${(err as Error).message}`);
    }
    save();
  }
  save();
  process.stdout.write(markdown(report));
  log(`wrote bench/results/${stamp}.json and .md`);
}

function pick(re: RegExp): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && re.test(k)) out[k] = v;
  return out;
}

function markdown(report: Record<string, unknown>): string {
  const m = report.machine as {
    cpus: number;
    cpuModel: string;
    loadavgAtStart: number[];
    loadavgAtEnd: number[];
    versions: Record<string, string>;
  };
  const e2e = report.e2e as { error?: string } | undefined;
  const scale = report.scale as { error?: string } | undefined;
  const parts = [
    `# CronQ benchmarks — ${report.startedAt as string}`,
    '',
    `Machine: ${m.cpus} × ${m.cpuModel}; Node ${m.versions.node}, MariaDB ${m.versions.mariadb}, PostgreSQL ${m.versions.postgres}, Redis ${m.versions.redis}. Load average at start ${m.loadavgAtStart.map((l) => l.toFixed(2)).join(' ')}, at end ${m.loadavgAtEnd.map((l) => l.toFixed(2)).join(' ')}.`,
    '',
    '## End to end: CronQ and the schedulers a Node team would pick instead',
    '',
    e2e?.error ? `_failed: ${e2e.error}_\n` : e2eTable(e2e as never),
    e2e?.error ? '' : cpuTable(e2e as never),
    '## Scale: injector cycle cost against jobs defined',
    '',
    scale?.error ? `_failed: ${scale.error}_\n` : scaleTable(scale as never),
    '## Capacity: runs per second the central tier sustains',
    '',
    capacityTable(report.capacity as never),
    '## Component benchmarks (as each prints them)',
    '',
    ...Object.entries(report.components as Record<string, unknown>).map(([k, v]) =>
      componentTable(k, v),
    ),
  ];
  return parts.join('\n');
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
