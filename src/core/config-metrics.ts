import { fail, intSetting, type Env } from './config-values';

/**
 * The /metrics settings of the injector, runner and results consumer (the
 * web serves /metrics on its own port, under its own rules). Off unless a
 * port is set. docs: README "Monitoring and alerts".
 */
export interface MetricsConfig {
  /** CRONQ_METRICS_PORT / --metrics-port; undefined = no metrics server. */
  port: number | undefined;
  /** CRONQ_METRICS_LISTEN / --metrics-listen: the interface to bind (default 127.0.0.1). */
  listen: string;
  /**
   * The bearer token a scrape must send: CRONQ_METRICS_TOKEN, else
   * CRONQ_API_TOKEN. Without one the server binds loopback only. Secret:
   * never logged.
   */
  token: string | undefined;
}

export function metricsFromEnv(e: Env): MetricsConfig {
  const rawPort = e.CRONQ_METRICS_PORT;
  const port =
    rawPort === undefined || rawPort.trim() === ''
      ? undefined
      : intSetting(e, 'CRONQ_METRICS_PORT', 0, 1, 65535);
  const own = e.CRONQ_METRICS_TOKEN === '' ? undefined : e.CRONQ_METRICS_TOKEN;
  if (own !== undefined && own.length < 8)
    fail('CRONQ_METRICS_TOKEN', '***', 'a secret of at least 8 characters');
  const api = e.CRONQ_API_TOKEN === '' ? undefined : e.CRONQ_API_TOKEN;
  return {
    port,
    listen: e.CRONQ_METRICS_LISTEN?.trim() || '127.0.0.1',
    token: own ?? api,
  };
}
