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
  return pino({
    level,
    base: { component: opts.component, pid: process.pid },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label) => ({ level: label }) },
  });
}

/** A logger that writes nothing, for tests and library use. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
