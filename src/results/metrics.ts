import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { BUCKETS } from '../core/metrics';
import type { EventEmitter } from 'node:events';
import type { NotifyEvents } from './notify/events';
import type { ResultsService } from './service';

/**
 * The results consumer's Prometheus metrics: counters from its typed
 * events (events.ts), gauges read from status() when scraped. README
 * "Monitoring and alerts" lists them.
 */
export function wireResultsMetrics(
  registry: Registry,
  service: ResultsService,
  /** The missed-run notices loop (notify/missed.ts). */
  missed?: EventEmitter<NotifyEvents>,
): void {
  const registers = [registry];
  const stored = new Counter({
    name: 'cronq_results_stored_total',
    help: 'Results written to the database (COMMITted).',
    registers,
  });
  const batches = new Counter({
    name: 'cronq_results_batches_total',
    help: 'Batches of results written and COMMITted.',
    registers,
  });
  const batchSeconds = new Histogram({
    name: 'cronq_results_batch_seconds',
    help: "A batch's write: from its first statement to the ack after the COMMIT.",
    buckets: [...BUCKETS.fast],
    registers,
  });
  const delay = new Histogram({
    name: 'cronq_results_delay_seconds',
    help: "Age of each stored batch's oldest result at the COMMIT, from the runner's x-send-datetime (rises while results wait in the queue).",
    buckets: [...BUCKETS.lag],
    registers,
  });
  const writeFailures = new Counter({
    name: 'cronq_results_write_failures_total',
    help: 'Batches that could not be written (handed back to the broker and retried with backoff).',
    registers,
  });
  const dead = new Counter({
    name: 'cronq_results_dead_lettered_total',
    help: 'Result messages set aside in cronq_results_dead (unreadable, or refused as unsigned).',
    labelNames: ['refused'] as const,
    registers,
  });
  const lost = new Counter({
    name: 'cronq_results_runs_lost_total',
    help: 'Runs marked lost because their heartbeats stopped (CRONQ_LOST_AFTER_SECONDS).',
    registers,
  });
  const retries = new Counter({
    name: 'cronq_results_retries_scheduled_total',
    help: "Retry runs written by the jobs' retries policy.",
    registers,
  });
  const missedTaken = new Counter({
    name: 'cronq_results_missed_runs_notified_total',
    help: 'Runs the injector recorded missed (catch-up, starting deadline) that this consumer notified: their notifications written, unless held back by repeat_after or no target lists missed.',
    registers,
  });
  const missedFailures = new Counter({
    name: 'cronq_results_missed_notice_failures_total',
    help: 'Takes of missed-run notices that failed (nothing changed; retried with backoff).',
    registers,
  });
  new Gauge({
    name: 'cronq_results_pending',
    help: 'Results taken from the broker and waiting for the next batch write.',
    registers,
    collect() {
      this.set(service.status().pending);
    },
  });
  new Gauge({
    name: 'cronq_results_write_failing',
    help: '1 while writes fail and batches are handed back; 0 when results are being stored.',
    registers,
    collect() {
      this.set(service.status().retrying ? 1 : 0);
    },
  });
  for (const refused of ['false', 'true']) dead.labels(refused).inc(0);

  service.on('batch:stored', (e) => {
    stored.inc(e.stored);
    batches.inc();
    batchSeconds.observe(e.ms / 1000);
    if (e.oldestAgeMs !== null) delay.observe(e.oldestAgeMs / 1000);
  });
  service.on('batch:failed', () => writeFailures.inc());
  service.on('dead-lettered', (e) => dead.labels(String(e.refused)).inc());
  service.on('lost:marked', (e) => lost.inc(e.count));
  service.on('retry:scheduled', () => retries.inc());
  missed?.on('missed:taken', (e) => missedTaken.inc(e.runIds.length));
  missed?.on('missed:failed', () => missedFailures.inc());
}
