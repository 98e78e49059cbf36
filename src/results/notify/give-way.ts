/**
 * When the notification sender gives way to the results (sender.ts): while
 * results are busy (ResultsService.busy) it waits, so a burst of failures
 * is stored before it is notified; but never more than MAX_YIELD_MS in one
 * busy spell, and a spell ends only after QUIET_TO_RESET_MS of quiet. A
 * gap of a moment between two batches does not start a new five seconds,
 * so results that are busy nearly all the time cannot hold sending back
 * for longer than the first MAX_YIELD_MS.
 */

/** The longest the sender waits for busy results in one spell before it sends anyway. */
export const MAX_YIELD_MS = 5000;
/** Quiet this long ends a spell: the next busy moment may hold sending back again. */
export const QUIET_TO_RESET_MS = 1000;

export class GiveWay {
  /** When the current busy spell began; null: none. */
  private spellSince: number | null = null;
  /** When the results were first seen quiet since they were last seen busy; null: busy. */
  private quietSince: number | null = null;

  /** Seen at `now`, the results `busy` or not: should the sender wait? */
  shouldWait(busy: boolean, now: number): boolean {
    if (!busy) {
      this.quietSince ??= now;
      if (now - this.quietSince >= QUIET_TO_RESET_MS) this.spellSince = null;
      return false;
    }
    this.quietSince = null;
    this.spellSince ??= now;
    return now - this.spellSince < MAX_YIELD_MS;
  }
}
