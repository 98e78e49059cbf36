import type { Registry } from 'prom-client';
import type { MetricsConfig } from '../config-metrics';
import { isLoopback } from '../config';
import type { DaemonPart } from '../daemon';
import { ConfigError } from '../errors';
import type { Logger } from '../logger';
import { hostRules } from '../../web/host-check';
import { createRegistry } from './registry';
import { MetricsServer } from './server';

/**
 * The /metrics server of the injector, runner or results consumer, as a
 * daemon part, or no part when CRONQ_METRICS_PORT is unset. `wire` defines
 * the daemon's metrics on the registry (from its typed events); it is not
 * called when metrics are off, so they cost nothing then. A non-loopback
 * bind without a token is refused here, before anything starts.
 */
export function metricsParts(
  config: MetricsConfig,
  allowedHosts: readonly string[],
  logger: Logger,
  wire: (registry: Registry) => void,
): DaemonPart[] {
  if (config.port === undefined) return [];
  if (config.token === undefined && !isLoopback(config.listen))
    throw new ConfigError(
      `CRONQ_METRICS_LISTEN=${config.listen} is not a loopback address: set CRONQ_METRICS_TOKEN (or CRONQ_API_TOKEN) to serve /metrics beyond this host`,
    );
  const registry = createRegistry();
  wire(registry);
  const server = new MetricsServer({
    port: config.port,
    host: config.listen,
    rules: { token: config.token, hosts: hostRules(config.listen, allowedHosts) },
    registry,
    logger,
  });
  return [{ name: 'metrics server', start: () => server.start(), stop: () => server.stop() }];
}
