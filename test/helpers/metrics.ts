/**
 * Reading /metrics the way Prometheus does: fetch it, parse it with a real
 * text-format parser (parse-prometheus-text-format, prom2json's output),
 * and pick a sample's value out of it.
 */
import { createRequire } from 'node:module';
import net from 'node:net';

export interface MetricFamily {
  name: string;
  help: string;
  type: 'COUNTER' | 'GAUGE' | 'HISTOGRAM' | 'SUMMARY' | 'UNTYPED';
  metrics: Array<{
    labels?: Record<string, string>;
    value?: string;
    buckets?: Record<string, string>;
    count?: string;
    sum?: string;
  }>;
}

const parseText = createRequire(__filename)('parse-prometheus-text-format') as (
  text: string,
) => MetricFamily[];

/** Families by name; throws when the text is not valid exposition format. */
export function parseMetrics(text: string): Map<string, MetricFamily> {
  return new Map(parseText(text).map((f) => [f.name, f]));
}

export async function scrape(
  url: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; text: string; contentType: string | null }> {
  const res = await fetch(url, { headers, signal: AbortSignal.timeout(10_000) });
  return {
    status: res.status,
    text: await res.text(),
    contentType: res.headers.get('content-type'),
  };
}

/**
 * The sum of a family's samples whose labels include `labels` (a counter's
 * or gauge's value; a histogram's observation count). 0 when none match;
 * throws when the family is missing.
 */
export function sampleValue(
  families: Map<string, MetricFamily>,
  name: string,
  labels: Record<string, string> = {},
): number {
  const f = families.get(name);
  if (!f) throw new Error(`no metric ${name} in the scrape`);
  let total = 0;
  for (const m of f.metrics) {
    if (!Object.entries(labels).every(([k, v]) => m.labels?.[k] === v)) continue;
    total += Number(f.type === 'HISTOGRAM' ? m.count : m.value);
  }
  return total;
}

/** A TCP port free right now on 127.0.0.1 (for a daemon's CRONQ_METRICS_PORT). */
export async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}
