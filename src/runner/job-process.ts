import { spawn, type ChildProcess } from 'node:child_process';
import os from 'node:os';
import type { Readable } from 'node:stream';
import type { StreamName } from './job-log';

/** How a command ended. */
export interface ProcessOutcome {
  /** `spawn_error`: the shell could not be started at all (nothing ran). */
  kind: 'exited' | 'spawn_error';
  /** The exit code, or 128 + the signal number when a signal ended it (as a shell reports it); null after a spawn error. */
  returnCode: number | null;
  signal: NodeJS.Signals | null;
  /** Why the runner ended it, when it did: a timeout or the runner's shutdown. */
  terminatedBy: 'timeout' | 'shutdown' | null;
  error: Error | undefined;
  /** Epoch ms of the command's start (`go`) and of its exit. */
  spawnedAt: number;
  exitedAt: number;
}

export interface ProcessSpec {
  command: string;
  env: NodeJS.ProcessEnv;
  /** 0 / null = no limit. */
  timeoutMs: number | null;
  killGraceMs: number;
  /** Receives output; returns false when it wants the pipes paused until `drained` resolves. */
  onOutput(stream: StreamName, chunk: Buffer): boolean;
  drained(): Promise<void>;
}

/** After the shell exits, how long pipes still held open by its background children may keep delivering output. */
const PIPE_LINGER_MS = 200;

/**
 * What `/bin/sh -c` is given. The shell is started (fork + exec, the costly
 * part) ahead of time, while the job still waits for a slot (see the
 * runner's preforkWaiting), but it runs nothing until the runner writes a
 * newline to its stdin (`go`).
 * If the runner decides not to run the job, or dies, stdin reaches EOF
 * without that line and the shell exits 125 having run nothing. The command
 * comes as $1 and is run with `eval`, in the same shell, after `shift`, so
 * it sees what `sh -c <command>` would ($0 = /bin/sh, no arguments); stdin is
 * at EOF, as /dev/null would be. Only the shell's own error messages differ
 * ("eval: ..." prefix).
 */
const GATED_SHELL =
  'IFS= read -r __cronq_go || exit 125; __cronq_cmd=$1; shift; eval "$__cronq_cmd"';
/** Exit code of a shell that was released without the go line (nothing ran). */
export const NOT_RELEASED_CODE = 125;

function signalCode(signal: NodeJS.Signals): number {
  return 128 + (os.constants.signals[signal] ?? 0);
}

/**
 * One command run by `/bin/sh` in its own process group (`detached`), so a
 * timeout or shutdown can signal the shell and every process it started
 * (`kill(-pgid)`), not only the shell. `start()` forks the shell, gated;
 * `go()` lets it run the command, `abandon()` lets it exit without running
 * it (see GATED_SHELL).
 */
export class JobProcess {
  private child: ChildProcess | undefined;
  private terminatedBy: 'timeout' | 'shutdown' | null = null;
  private timeoutTimer: NodeJS.Timeout | undefined;
  private killTimer: NodeJS.Timeout | undefined;
  private exited = false;
  private released = false;
  readonly done: Promise<ProcessOutcome>;
  private resolveDone!: (o: ProcessOutcome) => void;
  spawnedAt = 0;
  /** performance.now() at `go` and at exit, for the overhead figures. */
  spawnedHr = 0;
  exitedHr = 0;

  constructor(private readonly spec: ProcessSpec) {
    this.done = new Promise((resolve) => (this.resolveDone = resolve));
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  start(): void {
    let child: ChildProcess;
    try {
      child = spawn('/bin/sh', ['-c', GATED_SHELL, '/bin/sh', this.spec.command], {
        env: this.spec.env,
        detached: true,
        stdio: ['pipe', 'pipe', 'pipe'],
      });
    } catch (err) {
      // Node throws some exec failures synchronously (E2BIG for a command over the
      // kernel's argument limit, a NUL byte in it): nothing ran, so "could not start".
      this.finish({ kind: 'spawn_error', returnCode: null, signal: null, error: err as Error });
      return;
    }
    child.stdin!.on('error', () => undefined);
    this.child = child;
    child.once('error', (err) => {
      // Without a pid nothing was started (ENOENT, E2BIG, EACCES, EAGAIN...): the run "could not start".
      if (child.pid === undefined)
        this.finish({ kind: 'spawn_error', returnCode: null, signal: null, error: err });
    });
    this.pipe(child.stdout!, 'out');
    this.pipe(child.stderr!, 'err');
    child.once('exit', (code, signal) => {
      this.exited = true;
      clearTimeout(this.timeoutTimer);
      const exitedAt = Date.now();
      this.exitedHr = performance.now();
      const returnCode = signal ? signalCode(signal) : code;
      // Output a background child still writes after the shell is gone is read
      // for a moment, then the pipes are closed so the run can end.
      const closed = Promise.all([streamClosed(child.stdout!), streamClosed(child.stderr!)]);
      // The linger only counts while output flows: pipes paused because the job
      // log is behind still hold output that belongs in the log.
      let linger: NodeJS.Timeout | undefined;
      const arm = () => {
        linger = setTimeout(() => {
          if (child.stdout?.isPaused() || child.stderr?.isPaused()) return arm();
          child.stdout?.destroy();
          child.stderr?.destroy();
        }, PIPE_LINGER_MS);
      };
      arm();
      void closed.then(() => {
        clearTimeout(linger);
        this.finish({ kind: 'exited', returnCode, signal, error: undefined, exitedAt });
      });
    });
  }

  /** Let the gated shell run the command; the timeout counts from here. */
  go(): void {
    const child = this.child;
    if (!child || this.released || this.exited) return;
    this.released = true;
    this.spawnedAt = Date.now();
    this.spawnedHr = performance.now();
    child.stdin!.end('\n');
    if (this.spec.timeoutMs && this.spec.timeoutMs > 0) {
      this.timeoutTimer = setTimeout(() => this.terminate('timeout'), this.spec.timeoutMs);
    }
  }

  /** Close the gated shell's stdin without the go line: it exits 125, having run nothing. */
  abandon(): void {
    if (this.released) return;
    this.released = true;
    this.child?.stdin?.end();
  }

  private pipe(stream: Readable, name: StreamName): void {
    stream.on('data', (chunk: Buffer) => {
      if (!this.spec.onOutput(name, chunk)) {
        // The job log is behind: stop reading until it catches up (the child blocks on a full pipe).
        const child = this.child;
        child?.stdout?.pause();
        child?.stderr?.pause();
        void this.spec.drained().then(() => {
          child?.stdout?.resume();
          child?.stderr?.resume();
        });
      }
    });
    stream.on('error', () => undefined);
  }

  private finish(
    o: Omit<ProcessOutcome, 'terminatedBy' | 'spawnedAt' | 'exitedAt'> & { exitedAt?: number },
  ): void {
    clearTimeout(this.timeoutTimer);
    this.resolveDone({
      ...o,
      terminatedBy: this.terminatedBy,
      spawnedAt: this.spawnedAt,
      exitedAt: o.exitedAt ?? Date.now(),
    });
  }

  /** Send a signal to the whole process group; false if it is gone. */
  signalGroup(signal: NodeJS.Signals): boolean {
    const pid = this.child?.pid;
    if (pid === undefined) return false;
    try {
      process.kill(-pid, signal);
      return true;
    } catch {
      return false;
    }
  }

  /**
   * SIGTERM to the process group, SIGKILL after the grace. The SIGKILL is
   * sent to the group even when the shell has already exited, so a child
   * that ignores SIGTERM does not outlive its run.
   */
  terminate(why: 'timeout' | 'shutdown'): void {
    if (this.terminatedBy || this.child?.pid === undefined) return;
    if (this.exited && why === 'shutdown') return;
    this.terminatedBy = why;
    this.signalGroup('SIGTERM');
    this.killTimer = setTimeout(() => this.signalGroup('SIGKILL'), this.spec.killGraceMs);
    this.killTimer.unref();
  }

  /** SIGKILL the group now (a second signal to the runner). */
  killNow(): void {
    clearTimeout(this.killTimer);
    this.signalGroup('SIGKILL');
  }
}

function streamClosed(s: Readable): Promise<void> {
  if (s.destroyed || s.readableEnded) return Promise.resolve();
  return new Promise((resolve) => {
    s.once('close', () => resolve());
    s.once('end', () => resolve());
  });
}
