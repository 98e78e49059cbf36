import { Registry, collectDefaultMetrics } from 'prom-client';

/**
 * A daemon's own registry (never prom-client's global one, so tests can
 * build several in one process), with the default process metrics
 * (process_cpu_seconds_total, process_resident_memory_bytes,
 * nodejs_eventloop_lag_seconds, ...).
 */
export function createRegistry(): Registry {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  return registry;
}

/** Histogram buckets in seconds, shared so the dashboard's quantiles read alike. */
export const BUCKETS = {
  /** Milliseconds to a few seconds: a spawn, a batch write. */
  fast: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
  /** Tens of milliseconds to an hour: how late something happened. */
  lag: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600],
} as const;
