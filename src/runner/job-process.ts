import os from 'node:os';
import { setLongTimeout, type LongTimeout } from '../core/timers';
import type { StreamName } from './job-log';
import type { LaunchedChild, Launcher } from './launcher';

/** How a command ended. */
export interface ProcessOutcome {
  /** `spawn_error`: the shell could not be started at all (nothing ran). */
  kind: 'exited' | 'spawn_error';
  /** The exit code, or 128 + the signal number when a signal ended it (as a shell reports it); null after a spawn error. */
  returnCode: number | null;
  signal: NodeJS.Signals | null;
  /** Why the runner ended it, when it did: a timeout or the runner's shutdown. */
  terminatedBy: 'timeout' | 'shutdown' | 'kill' | null;
  error: Error | undefined;
  /** Epoch ms of the command's start (`go`) and of its exit. */
  spawnedAt: number;
  exitedAt: number;
}

export interface ProcessSpec {
  command: string;
  /** Added to the launcher's base environment. */
  env: Record<string, string>;
  /** 0 / null = no limit. */
  timeoutMs: number | null;
  killGraceMs: number;
  /** Receives output; returns false when it wants the pipes paused until `drained` resolves. */
  onOutput(stream: StreamName, chunk: Buffer): boolean;
  drained(): Promise<void>;
}

/** Exit code of a gated shell released without the go line: nothing ran (see launcher-thread.ts). */
export const NOT_RELEASED_CODE = 125;

function signalCode(signal: NodeJS.Signals): number {
  return 128 + (os.constants.signals[signal] ?? 0);
}

/**
 * One command run by `/bin/sh` in its own process group (`detached`), so a
 * timeout or shutdown can signal the shell and every process it started
 * (`kill(-pgid)`), not only the shell. `start()` has the launcher fork the
 * shell, gated (see launcher-thread.ts); `go()` lets it run the command,
 * `abandon()` lets it exit without running it.
 */
export class JobProcess {
  private child: LaunchedChild | undefined;
  private childPid: number | undefined;
  private terminatedBy: 'timeout' | 'shutdown' | 'kill' | null = null;
  private timeoutTimer: LongTimeout | undefined;
  private killTimer: LongTimeout | undefined;
  private ended = false;
  /** `held` until `go` (the gate line is on its way) or `abandon` (EOF is). */
  private gate: 'held' | 'released' | 'abandoned' = 'held';
  /** How the shell exited; its pipes may still be draining. */
  private exit: { returnCode: number | null; signal: NodeJS.Signals | null } | undefined;
  readonly done: Promise<ProcessOutcome>;
  private resolveDone!: (o: ProcessOutcome) => void;
  spawnedAt = 0;
  /** performance.now() at exit, for the overhead figure. */
  exitedHr = 0;
  /** Settles with performance.now() when the command is released in a forked shell (`go` and the fork both done). */
  readonly released: Promise<number>;
  private markReleased!: (hr: number) => void;

  constructor(
    private readonly spec: ProcessSpec,
    private readonly launcher: Launcher,
  ) {
    this.done = new Promise((resolve) => (this.resolveDone = resolve));
    this.released = new Promise((resolve) => (this.markReleased = resolve));
  }

  get pid(): number | undefined {
    return this.childPid;
  }

  start(): void {
    this.child = this.launcher.launch(this.spec.command, this.spec.env, {
      spawned: (pid) => {
        this.childPid = pid;
        if (this.gate === 'released') this.markReleased(performance.now());
        // A shutdown or timeout that came before the pid was known.
        if (this.terminatedBy) this.signalGroup('SIGTERM');
      },
      spawnError: (error) =>
        this.finish({ kind: 'spawn_error', returnCode: null, signal: null, error }),
      data: (stream, chunk) => {
        if (!this.spec.onOutput(stream, chunk)) {
          // The job log is behind: stop reading until it catches up (the child blocks on a full pipe).
          const child = this.child;
          child?.pause();
          void this.spec.drained().then(() => child?.resume());
        }
      },
      exit: (code, signal, at) => {
        this.timeoutTimer?.cancel();
        this.exitedHr = at;
        this.exit = { returnCode: signal ? signalCode(signal) : code, signal };
      },
      closed: () => {
        this.finish({
          kind: 'exited',
          returnCode: this.exit?.returnCode ?? null,
          signal: this.exit?.signal ?? null,
          error: undefined,
          exitedAt: performance.timeOrigin + (this.exitedHr || performance.now()),
        });
      },
      lost: (error) => {
        // Its pipes are gone with the thread; make sure nothing of it runs on.
        this.signalGroup('SIGKILL');
        const forked = this.childPid !== undefined;
        this.finish({
          kind: forked ? 'exited' : 'spawn_error',
          returnCode: forked ? signalCode('SIGKILL') : null,
          signal: forked ? 'SIGKILL' : null,
          error,
        });
      },
    });
  }

  /** Let the gated shell run the command; the timeout counts from here. */
  go(): void {
    if (!this.child || this.gate !== 'held' || this.exit || this.ended) return;
    this.gate = 'released';
    this.spawnedAt = Date.now();
    if (this.childPid !== undefined) this.markReleased(performance.now());
    this.child.release();
    if (this.spec.timeoutMs && this.spec.timeoutMs > 0) {
      // Any length: a job's timeout comes from its message (30 days is 2592000000 ms).
      this.timeoutTimer = setLongTimeout(() => this.terminate('timeout'), this.spec.timeoutMs);
    }
  }

  /** Close the gated shell's stdin without the go line: it exits NOT_RELEASED_CODE, having run nothing. */
  abandon(): void {
    if (this.gate !== 'held') return;
    this.gate = 'abandoned';
    this.child?.abandon();
  }

  private finish(
    o: Omit<ProcessOutcome, 'terminatedBy' | 'spawnedAt' | 'exitedAt'> & { exitedAt?: number },
  ): void {
    if (this.ended) return;
    this.ended = true;
    this.timeoutTimer?.cancel();
    this.resolveDone({
      ...o,
      terminatedBy: this.terminatedBy,
      spawnedAt: this.spawnedAt,
      exitedAt: o.exitedAt ?? Date.now(),
    });
  }

  /** Send a signal to the whole process group; false if it is gone. */
  signalGroup(signal: NodeJS.Signals): boolean {
    const pid = this.childPid;
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
  terminate(why: 'timeout' | 'shutdown' | 'kill'): void {
    if (this.terminatedBy || this.ended) return;
    if (this.exit && why !== 'timeout') return;
    this.terminatedBy = why;
    this.signalGroup('SIGTERM');
    this.killTimer = setLongTimeout(() => this.signalGroup('SIGKILL'), this.spec.killGraceMs, {
      unref: true,
    });
  }

  /** SIGKILL the group now (a second signal to the runner). */
  killNow(): void {
    this.killTimer?.cancel();
    this.signalGroup('SIGKILL');
  }
}
