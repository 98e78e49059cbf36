export { BUCKETS, createRegistry } from './registry';
export { metricsParts } from './part';
export { MetricsServer } from './server';
