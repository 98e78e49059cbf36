/**
 * The launcher's worker thread (see launcher.ts): it forks the job shells
 * and owns their pipes, so Node's synchronous fork + exec (about a
 * millisecond a child) blocks this thread, not the runner's event loop.
 * It reports each child's pid, output, exit and the closing of its pipes.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { parentPort, workerData } from 'node:worker_threads';
import type { Readable } from 'node:stream';
import { streamEnded } from '../core/streams';
import { errorMessage } from '../core/async';
import { NOT_RELEASED_CODE } from './job-process';
import type { LauncherEvent, LauncherOp } from './launcher';

/**
 * What `/bin/sh -c` is given. The shell is forked ahead of time but runs
 * nothing until the runner writes a newline to its stdin (`go`). If the
 * runner decides not to run the job, or dies, stdin reaches EOF without that
 * line and the shell exits NOT_RELEASED_CODE (125) having run nothing. The
 * command comes as $1 and is run with `eval`, in the same shell, after
 * `shift`, so it sees what `sh -c <command>` would ($0 = /bin/sh, no
 * arguments); stdin is at EOF, as /dev/null would be. Only the shell's own
 * error messages differ ("eval: ..." prefix).
 */
const GATED_SHELL = `IFS= read -r __cronq_go || exit ${NOT_RELEASED_CODE}; __cronq_cmd=$1; shift; eval "$__cronq_cmd"`;

/** After the shell exits, how long pipes still held open by its background children may keep delivering output. */
const PIPE_LINGER_MS = 200;

const port = parentPort!;
const baseEnv = (workerData as { env: NodeJS.ProcessEnv }).env;

interface Tracked {
  child: ChildProcess;
  paused: boolean;
}
const children = new Map<number, Tracked>();

/** Events go out in one message per turn of this thread's loop: a burst of exits is one wake-up of the runner's thread, not one each. */
let outbox: LauncherEvent[] = [];
let transfers: ArrayBuffer[] = [];
function post(ev: LauncherEvent, transfer?: ArrayBuffer): void {
  if (outbox.length === 0) setImmediate(flush);
  outbox.push(ev);
  if (transfer) transfers.push(transfer);
}
function flush(): void {
  port.postMessage(outbox, transfers);
  outbox = [];
  transfers = [];
}

/** Epoch milliseconds with sub-millisecond precision (comparable across threads). */
const nowHr = () => performance.timeOrigin + performance.now();

function start(id: number, command: string, env: Record<string, string>): void {
  let child: ChildProcess;
  try {
    child = spawn('/bin/sh', ['-c', GATED_SHELL, '/bin/sh', command], {
      env: { ...baseEnv, ...env },
      detached: true,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
  } catch (err) {
    // Node throws some exec failures synchronously (E2BIG for a command over the
    // kernel's argument limit, a NUL byte in it): nothing ran.
    post({ ev: 'spawnError', id, message: errorMessage(err) });
    return;
  }
  const t: Tracked = { child, paused: false };
  child.stdin!.on('error', () => undefined);
  child.once('error', (err) => {
    // Without a pid nothing was started (ENOENT, EAGAIN...).
    if (child.pid === undefined) {
      children.delete(id);
      post({ ev: 'spawnError', id, message: err.message });
    }
  });
  if (child.pid === undefined) return;
  children.set(id, t);
  post({ ev: 'spawned', id, pid: child.pid });
  pipe(id, child.stdout!, 'out');
  pipe(id, child.stderr!, 'err');
  child.once('exit', (code, signal) => {
    post({ ev: 'exit', id, code, signal, at: nowHr() });
    // Output a background child still writes after the shell is gone is read
    // for a moment, then the pipes are closed so the run can end. The linger
    // only counts while output flows: pipes paused because the job log is
    // behind still hold output that belongs in the log.
    let linger: NodeJS.Timeout | undefined;
    const arm = () => {
      linger = setTimeout(() => {
        if (t.paused) return arm();
        child.stdout?.destroy();
        child.stderr?.destroy();
      }, PIPE_LINGER_MS);
    };
    arm();
    void Promise.all([streamEnded(child.stdout!), streamEnded(child.stderr!)]).then(() => {
      clearTimeout(linger);
      children.delete(id);
      post({ ev: 'closed', id });
    });
  });
}

function pipe(id: number, stream: Readable, name: 'out' | 'err'): void {
  stream.on('data', (chunk: Buffer) => {
    // An exact-size copy whose memory moves to the runner's thread without another copy.
    const bytes = new Uint8Array(chunk);
    post({ ev: 'data', id, stream: name, bytes }, bytes.buffer);
  });
  stream.on('error', () => undefined);
}

port.on('message', (ops: LauncherOp[]) => {
  for (const op of ops) apply(op);
});

function apply(op: LauncherOp): void {
  if (op.op === 'spawn') return start(op.id, op.command, op.env);
  const t = children.get(op.id);
  if (!t) return;
  switch (op.op) {
    case 'stdin':
      t.child.stdin?.end(op.data);
      return;
    case 'pause':
      t.paused = true;
      t.child.stdout?.pause();
      t.child.stderr?.pause();
      return;
    case 'resume':
      t.paused = false;
      t.child.stdout?.resume();
      t.child.stderr?.resume();
      return;
  }
}
