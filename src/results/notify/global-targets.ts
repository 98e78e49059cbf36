import type { Knex } from '../../core/db';
import { errorText } from '../../core/error-text';
import type { Logger } from '../../core/logger';
import { GLOBAL_TARGETS_SETTING, shownTargetsText } from '../../core/notify/shown-targets';
import type { NotifyTarget } from '../../core/notify/targets';
import { writeSetting } from '../../core/settings';

/**
 * Record, once at start, the targets this consumer notifies for every job
 * (CRONQ_NOTIFY_*) so the web's job page can show them
 * (docs/notifications.md). An empty list is recorded too: removing the
 * settings clears the page. Consumers configured differently overwrite each
 * other; the last one started wins. Only for showing, so a failure is
 * logged and the consumer goes on.
 */
export async function recordGlobalTargets(
  db: Knex,
  targets: readonly NotifyTarget[],
  logger: Logger,
): Promise<void> {
  try {
    const changed = await writeSetting(db, GLOBAL_TARGETS_SETTING, shownTargetsText(targets));
    if (changed) logger.info({ targets: targets.length }, 'recorded the targets for every job');
  } catch (err) {
    logger.warn(
      { err: errorText(err) },
      'could not record the targets for every job; the job pages may show old ones',
    );
  }
}
