import type { EventEmitter } from 'node:events';
import { Counter, Histogram, type Registry } from 'prom-client';
import { BUCKETS } from '../core/metrics';
import type { InjectorEvents } from './events';

/**
 * The injector's Prometheus metrics, counted from its typed events
 * (events.ts): nothing in the loop knows about them. README "Monitoring
 * and alerts" lists them.
 */
export function wireInjectorMetrics(
  registry: Registry,
  injector: EventEmitter<InjectorEvents>,
): void {
  const registers = [registry];
  const claimed = new Counter({
    name: 'cronq_injector_claimed_jobs_total',
    help: 'Jobs claimed as due (each claim writes its runs to the outbox).',
    registers,
  });
  const published = new Counter({
    name: 'cronq_injector_published_total',
    help: 'Job messages the broker confirmed; republish="true" for runs published again after an unconfirmed attempt.',
    labelNames: ['republish'] as const,
    registers,
  });
  const unroutable = new Counter({
    name: 'cronq_injector_unroutable_total',
    help: 'Job messages the broker returned because no queue is bound to their routing key (the run is recorded failed).',
    registers,
  });
  const publishFailures = new Counter({
    name: 'cronq_injector_publish_failures_total',
    help: 'Job messages not confirmed (nacked, channel lost, no confirm in time); they stay in the outbox and are published again.',
    registers,
  });
  const lag = new Histogram({
    name: 'cronq_injector_publish_lag_seconds',
    help: "From a run's occurrence (scheduled_for, database clock) to the broker's confirm of its job message; 0 when it went out ahead of it.",
    buckets: [...BUCKETS.lag],
    registers,
  });
  const outages = new Counter({
    name: 'cronq_injector_outages_total',
    help: 'Times the database or the broker went away (once per outage; the injector waits it out).',
    labelNames: ['kind'] as const,
    registers,
  });
  const cycleErrors = new Counter({
    name: 'cronq_injector_cycle_errors_total',
    help: 'Injector cycles that failed with an error other than an outage (retried with backoff).',
    registers,
  });
  const skipped = new Counter({
    name: 'cronq_injector_runs_skipped_total',
    help: 'Runs recorded skipped because the previous run of the job was still going (overlap forbid).',
    registers,
  });
  const missed = new Counter({
    name: 'cronq_injector_occurrences_missed_total',
    help: 'Occurrences recorded missed (past their starting deadline, or left out by catch_up).',
    registers,
  });
  // Present at 0 from the first scrape, so rate() and increase() see every first event.
  for (const republish of ['false', 'true']) published.labels(republish).inc(0);
  for (const kind of ['database', 'broker']) outages.labels(kind).inc(0);

  injector.on('cycle:done', (e) => claimed.inc(e.claimed));
  injector.on('cycle:failed', () => cycleErrors.inc());
  injector.on('outage', (e) => outages.labels(e.kind).inc());
  injector.on('batch:confirmed', (e) => {
    published.labels(String(e.republish)).inc(e.confirmed.length);
    if (e.unroutable > 0) unroutable.inc(e.unroutable);
    if (e.failed > 0) publishFailures.inc(e.failed);
    for (const ms of e.lateMs) lag.observe(Math.max(0, ms) / 1000);
  });
  injector.on('run:skipped', () => skipped.inc());
  injector.on('run:missed', (e) => missed.inc(e.count));
}
