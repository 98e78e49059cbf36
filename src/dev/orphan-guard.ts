/**
 * Preloaded (`node --require`) into each daemon that `cronq dev` starts.
 * The daemons run in their own process groups, so if `cronq dev` itself is
 * killed outright (SIGKILL, a closed terminal) nothing would stop them;
 * this closes that gap: when the IPC channel to the parent goes away, the
 * daemon sends itself SIGTERM and stops in its usual order.
 *
 * Its stdout and stderr were pipes to the parent and are broken now, so
 * from here on whatever it writes to them (log lines, a stray
 * console.error), which has nowhere to go, is dropped instead of written.
 * (The logger also survives EPIPE by itself: core/logger.ts.)
 */
import fs from 'node:fs';

type WriteCallback = (err: NodeJS.ErrnoException | null, written: number, buffer?: unknown) => void;

function discardStdio(): void {
  const isStdio = (fd: unknown) => fd === 1 || fd === 2;
  const lengthOf = (data: unknown) =>
    typeof data === 'string'
      ? Buffer.byteLength(data)
      : ((data as { length?: number })?.length ?? 0);
  const writeSync = fs.writeSync;
  const write = fs.write;
  (fs as { writeSync: unknown }).writeSync = (fd: number, data: unknown, ...rest: unknown[]) =>
    isStdio(fd) ? lengthOf(data) : (writeSync as (...a: unknown[]) => number)(fd, data, ...rest);
  (fs as { write: unknown }).write = (fd: number, data: unknown, ...rest: unknown[]) => {
    if (!isStdio(fd)) return (write as (...a: unknown[]) => void)(fd, data, ...rest);
    const cb = rest[rest.length - 1] as WriteCallback | undefined;
    if (typeof cb === 'function') process.nextTick(cb, null, lengthOf(data), data);
  };
}

if (process.channel) {
  process.once('disconnect', () => {
    discardStdio();
    process.kill(process.pid, 'SIGTERM');
  });
  // Listening for 'disconnect' refs the channel; the daemon's own work keeps it alive, not this.
  process.channel.unref();
}
