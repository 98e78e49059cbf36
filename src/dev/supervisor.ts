import { spawn, type ChildProcess } from 'node:child_process';
import { EventEmitter } from 'node:events';
import path from 'node:path';
import type { Writable } from 'node:stream';
import { labelFor, prefixLines } from './prefix';

const ORPHAN_GUARD = path.join(__dirname, 'orphan-guard.js');

export interface RoleSpec {
  /** Shown in front of every log line, e.g. `injector`. */
  name: string;
  /** Executable in bin/, e.g. `cronq-injector`. */
  command: string;
}

export interface SupervisorOptions {
  roles: readonly RoleSpec[];
  env: NodeJS.ProcessEnv;
  binDir: string;
  stdout: Writable;
  stderr: Writable;
  colour: boolean;
  /** How long children get to stop after SIGTERM before they (and their process groups) are killed. */
  graceMs: number;
  /** Messages of the supervisor itself (`[dev] ...`). */
  say: (line: string) => void;
}

interface Child {
  role: RoleSpec;
  process: ChildProcess;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  done: boolean;
}

/**
 * Runs the daemons of `cronq dev` as child processes. Each child gets its
 * own process group, so a Ctrl-C at the terminal reaches only the
 * supervisor, which forwards one SIGTERM to each child (a child that got the
 * terminal's SIGINT as well would take the forwarded signal as a second one
 * and skip its orderly stop). After the grace period whatever is left of a
 * child's group is killed, so no process outlives `cronq dev`.
 *
 * A child that exits on its own is not restarted: the supervisor says so
 * and stops the others (event `failed`), because a crash loop in a terminal
 * would hide the one line that explains it.
 */
export class Supervisor extends EventEmitter {
  private readonly children: Child[] = [];
  private stopping: Promise<void> | undefined;

  constructor(private readonly opts: SupervisorOptions) {
    super();
  }

  start(): void {
    const width = Math.max(...this.opts.roles.map((r) => r.name.length));
    this.opts.roles.forEach((role, i) => {
      // An IPC channel plus the orphan guard: if this process dies without
      // stopping them, the children notice the channel close and stop.
      const proc = spawn(
        process.execPath,
        ['--require', ORPHAN_GUARD, path.join(this.opts.binDir, role.command)],
        {
          env: this.opts.env,
          stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
          detached: true,
        },
      );
      const label = labelFor(role.name, i, width, this.opts.colour);
      const streams = Promise.all([
        prefixLines(proc.stdout!, this.opts.stdout, label),
        prefixLines(proc.stderr!, this.opts.stderr, label),
      ]);
      const child: Child = {
        role,
        process: proc,
        done: false,
        exited: new Promise((resolve) => {
          proc.on('error', (err) => {
            this.opts.say(`${role.name} could not be started: ${err.message}`);
            child.done = true;
            resolve({ code: 1, signal: null });
          });
          proc.on('exit', (code, signal) => {
            child.done = true;
            // Let the last lines through before anyone reports the exit.
            void streams.then(() => resolve({ code, signal }));
          });
        }),
      };
      this.children.push(child);
      void child.exited.then((r) => {
        if (!this.stopping) {
          this.emit('failed', role.name, r);
        }
      });
    });
  }

  /** The process ids of the children still running (for tests and messages). */
  pids(): number[] {
    return this.children
      .filter((c) => !c.done && c.process.pid !== undefined)
      .map((c) => c.process.pid!);
  }

  /** SIGTERM every child, wait up to the grace, then SIGKILL their process groups. Idempotent. */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      for (const c of this.children) this.signal(c, 'SIGTERM');
      let timer: NodeJS.Timeout | undefined;
      const graceOver = new Promise<void>((resolve) => {
        timer = setTimeout(resolve, this.opts.graceMs);
      });
      await Promise.race([Promise.all(this.children.map((c) => c.exited)), graceOver]);
      clearTimeout(timer);
      for (const c of this.children) {
        if (!c.done)
          this.opts.say(
            `${c.role.name} did not stop within ${Math.round(this.opts.graceMs / 1000)} s; killing it`,
          );
        // Also sweeps up anything the child started in its group.
        this.signal(c, 'SIGKILL');
      }
      await Promise.all(this.children.map((c) => c.exited));
    })();
    return this.stopping;
  }

  /** Kill everything at once (a second Ctrl-C). */
  kill(): void {
    for (const c of this.children) this.signal(c, 'SIGKILL');
  }

  private signal(c: Child, signal: NodeJS.Signals): void {
    const pid = c.process.pid;
    if (pid === undefined) return;
    try {
      // The child leads its own group: -pid reaches it and what it spawned there.
      process.kill(signal === 'SIGKILL' ? -pid : pid, signal);
    } catch {
      // already gone
    }
  }
}
