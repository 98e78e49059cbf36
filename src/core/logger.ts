import fs from 'node:fs';
import pino, { type Logger } from 'pino';

export type { Logger };

export interface LoggerOptions {
  level?: string;
  /** `json` (default) or `pretty`; pretty needs the optional pino-pretty package. */
  format?: 'json' | 'pretty';
  /** Name of the process role, e.g. `injector`; becomes the `component` field. */
  component: string;
}

/**
 * The root logger of a process. JSON lines on stdout by default, since every
 * log shipper reads them; `CRONQ_LOG_FORMAT=pretty` for a person at a terminal.
 * Secrets never reach it: config objects are logged only through `describeConfig`.
 */
export function createLogger(opts: LoggerOptions): Logger {
  const level = opts.level ?? 'info';
  if (opts.format === 'pretty') {
    try {
      require.resolve('pino-pretty');
      return pino({
        level,
        base: { component: opts.component },
        transport: {
          target: 'pino-pretty',
          options: { colorize: true, translateTime: 'SYS:HH:MM:ss.l' },
        },
      });
    } catch {
      // pino-pretty is a dev dependency; fall through to JSON when absent.
    }
  }
  return pino(
    {
      level,
      base: { component: opts.component, pid: process.pid },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    stdoutDestination(),
  );
}

type Destination = ReturnType<typeof pino.destination>;

/**
 * pino's own stdout writer (asynchronous, flushed at exit), made safe for a
 * reader that has gone away. pino already stops writing when an ordinary
 * write fails with EPIPE, but the flush at exit (sonic-boom's flushSync)
 * retries a write that fails with EPIPE forever, so a daemon whose log
 * reader died (a killed `| tee`, a crashed shipper) would hang at stop until
 * SIGKILL. Here, during that flush, EPIPE on stdout counts as written: the
 * lines have nowhere to go, and the daemon exits.
 */
function stdoutDestination(fd = 1): Destination {
  const dest = pino.destination({ dest: fd, sync: false });
  const flushSync = dest.flushSync.bind(dest);
  dest.flushSync = () => {
    const writeSync = fs.writeSync;
    (fs as { writeSync: unknown }).writeSync = (
      target: number,
      data: unknown,
      ...rest: unknown[]
    ) => {
      try {
        return (writeSync as (...a: unknown[]) => number)(target, data, ...rest);
      } catch (err) {
        if (target !== fd || (err as NodeJS.ErrnoException).code !== 'EPIPE') throw err;
        return typeof data === 'string'
          ? Buffer.byteLength(data)
          : ((data as { length?: number }).length ?? 0);
      }
    };
    try {
      flushSync();
    } finally {
      (fs as { writeSync: unknown }).writeSync = writeSync;
    }
  };
  return dest;
}

/** A logger that writes nothing, for tests and library use. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
