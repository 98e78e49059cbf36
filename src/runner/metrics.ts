import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { BUCKETS } from '../core/metrics';
import type { HoldReason } from './events';
import type { Runner } from './runner';

/**
 * The runner's Prometheus metrics: counters from its typed events
 * (events.ts), gauges read from the runner when scraped. Nothing in the
 * run path knows about them. README "Monitoring and alerts" lists them.
 */
export function wireRunnerMetrics(registry: Registry, runner: Runner, concurrency: number): void {
  const registers = [registry];
  new Gauge({
    name: 'cronq_runner_running_jobs',
    help: 'Runs holding a slot of this runner now.',
    registers,
    collect() {
      this.set(runner.running);
    },
  });
  new Gauge({
    name: 'cronq_runner_concurrency',
    help: 'Runs this runner may have at once (CRONQ_CONCURRENCY).',
    registers,
  }).set(concurrency);
  const started = new Counter({
    name: 'cronq_runner_started_total',
    help: 'Runs started (the delivery acked and the command released).',
    registers,
  });
  const results = new Counter({
    name: 'cronq_runner_results_total',
    help: 'Runs ended by this runner, by the status of their result (succeeded, failed, timed_out, missed).',
    labelNames: ['status'] as const,
    registers,
  });
  const couldNotStart = new Counter({
    name: 'cronq_runner_could_not_start_total',
    help: 'Runs whose command could not be started (also counted as failed results).',
    registers,
  });
  const spawn = new Histogram({
    name: 'cronq_runner_spawn_delay_seconds',
    help: 'From a run taking its slot to its command running in the forked shell.',
    buckets: [...BUCKETS.fast],
    registers,
  });
  const rejected = new Counter({
    name: 'cronq_runner_deliveries_rejected_total',
    help: 'Job messages not run: poison (malformed), refused (bad or missing signature, set aside in the dead queue), duplicate (already taken).',
    labelNames: ['reason'] as const,
    registers,
  });
  new Gauge({
    name: 'cronq_runner_results_buffered',
    help: 'Results the broker has not confirmed yet (they pile up while it is away and are published again).',
    registers,
    collect() {
      this.set(runner.resultOutbox?.size ?? 0);
    },
  });
  new Gauge({
    name: 'cronq_runner_results_buffered_bytes',
    help: 'Bytes of the results not confirmed yet (bounded by CRONQ_RESULT_BUFFER_MAX_BYTES).',
    registers,
    collect() {
      this.set(Number(runner.resultOutbox?.status().bufferedBytes ?? 0));
    },
  });
  const held = new Gauge({
    name: 'cronq_runner_held',
    help: '1 while the runner takes no deliveries for this reason: slots (all busy) or result-buffer (over its limit).',
    labelNames: ['reason'] as const,
    registers,
  });
  for (const status of ['succeeded', 'failed', 'timed_out', 'missed'])
    results.labels(status).inc(0);
  for (const reason of ['poison', 'refused', 'duplicate']) rejected.labels(reason).inc(0);
  const reasons: HoldReason[] = ['slots', 'result-buffer'];
  for (const reason of reasons) held.labels(reason).set(0);

  runner.on('run:started', () => started.inc());
  runner.on('run:released', (e) => spawn.observe(e.spawnMs / 1000));
  runner.on('run:finished', (e) => results.labels(e.status).inc());
  runner.on('run:missed', () => results.labels('missed').inc());
  runner.on('run:could-not-start', () => {
    couldNotStart.inc();
    results.labels('failed').inc();
  });
  runner.on('delivery:poison', () => rejected.labels('poison').inc());
  runner.on('delivery:refused', () => rejected.labels('refused').inc());
  runner.on('delivery:duplicate', () => rejected.labels('duplicate').inc());
  runner.on('consumer:held', (e) => held.labels(e.reason).set(1));
  runner.on('consumer:released', (e) => held.labels(e.reason).set(0));
}
