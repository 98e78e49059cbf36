import type { Knex } from '../core/db';
import { errorText } from '../core/error-text';
import type { Logger } from '../core/logger';
import { GLOBAL_TARGETS_SETTING, parseShownTargets } from '../core/notify/shown-targets';
import { readSetting } from '../core/settings';
import { targetView, type TargetView } from './notify-queries';

/** A job page within this long of the last read shows the same targets: one read per few seconds. */
const CACHE_MS = 5_000;

export interface GlobalTargetsView {
  /**
   * recorded: as the last cronq-results started recorded them (maybe none);
   * never: no cronq-results has recorded them yet (an older one, or none ran);
   * unreadable: the database did not answer.
   */
  state: 'recorded' | 'never' | 'unreadable';
  targets: TargetView[];
  recordedAt: Date | null;
}

/**
 * The targets every job notifies, as cronq-results recorded them in
 * `settings` (results/notify/global-targets.ts): the web has not the
 * CRONQ_NOTIFY_* settings itself. Cached for CACHE_MS, one read at a time.
 */
export class GlobalTargetsReader {
  private last: { at: number; view: GlobalTargetsView } | undefined;
  private reading: Promise<GlobalTargetsView> | undefined;

  constructor(
    private readonly db: Knex,
    private readonly logger: Logger,
    private readonly now: () => number = () => performance.now(),
  ) {}

  read(): Promise<GlobalTargetsView> {
    if (this.last && this.now() - this.last.at < CACHE_MS) return Promise.resolve(this.last.view);
    this.reading ??= this.readNow().finally(() => {
      this.reading = undefined;
    });
    return this.reading;
  }

  private async readNow(): Promise<GlobalTargetsView> {
    let view: GlobalTargetsView;
    try {
      const row = await readSetting(this.db, GLOBAL_TARGETS_SETTING);
      view = row
        ? {
            state: 'recorded',
            targets: parseShownTargets(row.value).map(targetView),
            recordedAt: row.updatedAt,
          }
        : { state: 'never', targets: [], recordedAt: null };
    } catch (err) {
      this.logger.warn({ err: errorText(err) }, 'could not read the targets for every job');
      // Not cached: the next page tries again.
      return { state: 'unreadable', targets: [], recordedAt: null };
    }
    this.last = { at: this.now(), view };
    return view;
  }
}
