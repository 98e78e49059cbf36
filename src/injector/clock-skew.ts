import type { EventEmitter } from 'node:events';
import type { Logger } from '../core/logger';
import type { InjectorEvents } from './events';
import { clockOffsetMs, type Probe } from './probe';

/** Clock difference between the database and this process above which a warning is logged. */
const SKEW_WARN_MS = 1000;

/**
 * Watches the difference between the database's clock and this process's,
 * measured by every probe. The database's clock decides what is due, so the
 * injector works on; the warning is for the runners, whose hold of an early
 * run goes by their own clock (docs/injector.md, "Publishing ahead"). Warned
 * once when it passes 1 s, and said again once it is back under 0.5 s (the
 * gap keeps a skew near 1 s from warning on every probe).
 */
export class ClockSkewWatch {
  private warned = false;

  constructor(
    private readonly log: Logger,
    private readonly events: EventEmitter<InjectorEvents>,
  ) {}

  check(p: Probe): void {
    const offset = clockOffsetMs(p);
    const offsetMs = Math.round(offset);
    if (Math.abs(offset) > SKEW_WARN_MS && !this.warned) {
      this.warned = true;
      this.log.warn(
        { clockOffsetMs: offsetMs },
        "database and process clocks differ by more than 1 s; the database's clock decides what is due",
      );
      this.events.emit('clock:skew', { offsetMs });
    } else if (Math.abs(offset) < SKEW_WARN_MS / 2 && this.warned) {
      this.warned = false;
      this.log.info({ clockOffsetMs: offsetMs }, 'database and process clocks agree again');
      this.events.emit('clock:agreed', { offsetMs });
    }
  }
}
