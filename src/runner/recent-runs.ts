/**
 * A bounded set of run ids this runner has taken, oldest forgotten first.
 * A job message can reach the same runner twice (the injector republishes an
 * unconfirmed run with the same run_id; the broker redelivers after a channel
 * loss); the set lets the second copy be acked without running the command
 * again. It is per process and in memory: a duplicate that reaches another
 * runner, or this one after a restart, is not caught here (it carries the
 * same run_id, so the results side records one run).
 */
export class RecentRuns {
  private readonly ids = new Set<string>();

  constructor(private readonly capacity = 10_000) {}

  has(runId: string): boolean {
    return this.ids.has(runId);
  }

  add(runId: string): void {
    this.ids.delete(runId);
    this.ids.add(runId);
    // A Set iterates in insertion order, so the first entry is the oldest.
    while (this.ids.size > this.capacity) {
      const oldest = this.ids.values().next().value as string;
      this.ids.delete(oldest);
    }
  }

  delete(runId: string): void {
    this.ids.delete(runId);
  }

  get size(): number {
    return this.ids.size;
  }
}
