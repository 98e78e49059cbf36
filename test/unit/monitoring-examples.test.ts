import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';
import type { Knex } from '../../src/core/db';
import { silentLogger } from '../../src/core/logger';
import { createRegistry } from '../../src/core/metrics';
import { wireInjectorMetrics } from '../../src/injector/metrics';
import { wireResultsMetrics } from '../../src/results/metrics';
import type { ResultsService } from '../../src/results/service';
import { wireRunnerMetrics } from '../../src/runner/metrics';
import type { Runner } from '../../src/runner/runner';
import { WebMetrics } from '../../src/web/metrics';

/**
 * The shipped alert rules and dashboard (examples/prometheus,
 * examples/grafana) name only metrics the daemons expose, as their real
 * registries define them; with promtool on the machine, the rules also
 * pass `promtool check rules` and their unit tests (alerts.test.yml).
 */

const ROOT = path.resolve(__dirname, '..', '..');
const PROM = path.join(ROOT, 'examples', 'prometheus');
const DASHBOARD = path.join(ROOT, 'examples', 'grafana', 'cronq-dashboard.json');

/** Every metric name the four daemons expose (series names: histograms add _bucket, _sum, _count). */
function exposedSeriesNames(): Set<string> {
  const registries = [createRegistry(), createRegistry(), createRegistry()];
  wireInjectorMetrics(registries[0]!, new EventEmitter());
  wireRunnerMetrics(registries[1]!, new EventEmitter() as unknown as Runner, 1);
  wireResultsMetrics(registries[2]!, new EventEmitter() as unknown as ResultsService);
  // No query runs until a scrape collects.
  registries.push(new WebMetrics({} as Knex, silentLogger()).registry);
  const names = new Set<string>(['up']); // Prometheus' own, per target.
  for (const r of registries)
    for (const m of r.getMetricsAsArray()) {
      const { name, type } = m as unknown as { name: string; type: string };
      names.add(name);
      if (type === 'histogram')
        for (const s of ['_bucket', '_sum', '_count']) names.add(`${name}${s}`);
    }
  return names;
}

/** Metric names in a PromQL expression (label values, strings and functions left out). */
function metricNamesIn(expr: string): string[] {
  const noStrings = expr.replace(/"(?:[^"\\]|\\.)*"/g, '""');
  return [...noStrings.matchAll(/\b(?:cronq|process|nodejs)_[a-z0-9_]+\b|\bup\b/g)].map(
    (m) => m[0],
  );
}

interface Rule {
  alert: string;
  expr: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}

function alertRules(): Rule[] {
  const doc = parseYaml(readFileSync(path.join(PROM, 'alerts.yml'), 'utf8')) as {
    groups: Array<{ name: string; rules: Rule[] }>;
  };
  return doc.groups.flatMap((g) => g.rules);
}

const promtool = (() => {
  const r = spawnSync('sh', ['-c', 'command -v promtool'], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : undefined;
})();

test(
  promtool
    ? 'examples/prometheus/alerts.yml passes promtool check rules and its unit tests (alerts.test.yml)'
    : 'examples/prometheus/alerts.yml: promtool not available here, so its rules and unit tests are not run by promtool (the YAML checks below still run)',
  { skip: promtool ? false : 'promtool is not installed (apt-get install prometheus)' },
  () => {
    for (const args of [
      ['check', 'rules', 'alerts.yml'],
      ['test', 'rules', 'alerts.test.yml'],
      ['check', 'config', '--syntax-only', 'prometheus.yml'],
    ]) {
      const r = spawnSync(promtool!, args, { cwd: PROM, encoding: 'utf8', timeout: 60_000 });
      assert.equal(r.status, 0, `promtool ${args.join(' ')}:\n${r.stdout}${r.stderr}`);
    }
  },
);

test('every alert rule parses as YAML, has a summary, and names only metrics the daemons expose', () => {
  const known = exposedSeriesNames();
  const rules = alertRules();
  assert.ok(rules.length >= 5);
  for (const r of rules) {
    assert.match(r.alert, /^Cronq[A-Za-z]+$/);
    assert.ok(r.annotations?.summary, `${r.alert} has a summary`);
    assert.ok(r.labels?.severity, `${r.alert} has a severity`);
    const names = metricNamesIn(r.expr);
    assert.ok(names.length > 0, `${r.alert} reads a metric`);
    for (const n of names) assert.ok(known.has(n), `${r.alert}: ${n} is exposed by a daemon`);
  }
});

test('the alert rules cover a failing job, an overdue job, an absent runner, a results backlog and dead letters', () => {
  const byName = new Map(alertRules().map((r) => [r.alert, r.expr]));
  const reads = (alert: string, metric: string) =>
    assert.ok(byName.get(alert)?.includes(metric), `${alert} reads ${metric}`);
  reads('CronqJobFailing', 'cronq_jobs{');
  reads('CronqJobsLate', 'cronq_jobs_late');
  reads('CronqJobOverdue', 'cronq_jobs_overdue');
  reads('CronqRunnerAbsent', 'up{job="cronq-runner"}');
  reads('CronqResultsBacklog', 'cronq_results_delay_seconds_bucket');
  reads('CronqResultsDeadLettered', 'cronq_results_dead_lettered_total');
});

test('the Grafana dashboard parses and every panel query names only metrics the daemons expose', () => {
  const known = exposedSeriesNames();
  const dash = JSON.parse(readFileSync(DASHBOARD, 'utf8')) as {
    title: string;
    panels: Array<{ title: string; targets: Array<{ expr: string }> }>;
  };
  assert.equal(dash.title, 'CronQ');
  assert.ok(dash.panels.length >= 8);
  const used = new Set<string>();
  for (const p of dash.panels) {
    assert.ok(p.targets.length > 0, `${p.title} has a query`);
    for (const t of p.targets)
      for (const n of metricNamesIn(t.expr)) {
        assert.ok(known.has(n), `${p.title}: ${n} is exposed by a daemon`);
        used.add(n);
      }
  }
  // Each daemon has at least one panel.
  for (const prefix of ['cronq_injector_', 'cronq_runner_', 'cronq_results_', 'cronq_jobs'])
    assert.ok(
      [...used].some((n) => n.startsWith(prefix)),
      `a panel reads ${prefix}*`,
    );
});
