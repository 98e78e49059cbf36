import { errorMessage } from '../core/async';
import { wakeMessage } from '../core/control';
import type { WebDeps } from './app';

/**
 * *Run now at once*: after `run_now` is set, tell every injector to claim
 * now instead of at its next poll (a `wake` order on `cronq.control`).
 * Best effort: with the broker away the run still starts at the next
 * poll, so a failure here is only logged and the request succeeds.
 */
export function wakeInjectors(deps: Pick<WebDeps, 'control' | 'logger'>): void {
  const { control, logger } = deps;
  if (!control?.available) return;
  control
    .send(wakeMessage(new Date()))
    .catch((err: unknown) =>
      logger.debug(
        { err: errorMessage(err) },
        'could not wake the injectors; the next poll claims',
      ),
    );
}
