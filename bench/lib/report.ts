/**
 * The markdown table of one `npm run bench` run, built from its JSON.
 * Every end-to-end cell is "median [min–max]" over the repetitions; ratios
 * are taken inside each repetition first, then summarised the same way.
 */
import type { Spread } from './stats';

type Summary = Record<string, Spread | undefined>;

function fmt(v: number, digits = 0): string {
  if (!Number.isFinite(v)) return 'n/a';
  return v.toLocaleString('en-US', {
    minimumFractionDigits: digits,
    maximumFractionDigits: digits,
  });
}

function cell(s: Spread | undefined, digits = 0): string {
  if (!s || s.n === 0) return 'n/a';
  if (s.n === 1) return fmt(s.median, digits);
  return `${fmt(s.median, digits)} [${fmt(s.min, digits)}–${fmt(s.max, digits)}]`;
}

function perRep(s: Spread | undefined): string {
  if (!s) return 'n/a';
  return s.values.map((v) => (Number.isFinite(v) ? fmt(v) : 'n/a')).join(' / ');
}

const NAMES: Record<string, string> = {
  cronq: 'CronQ',
  cronq_policies: 'CronQ, every job overlap forbid + retries',
  ceiling: 'bare pipeline (ceiling)',
  bullmq: 'BullMQ',
  pgboss: 'pg-boss (startAfter loop)',
};

export function e2eTable(
  e2e: { summary: Summary; workload: Record<string, unknown> } | undefined,
): string {
  if (!e2e) return '_end-to-end comparison not run_\n';
  const s = e2e.summary;
  const systems = ['cronq', 'cronq_policies', 'ceiling', 'bullmq', 'pgboss'].filter(
    (n) => s[`burst.${n}.runs_per_s`],
  );
  const others = systems.filter((n) => n !== 'cronq');
  const w = e2e.workload as {
    burstJobs: number;
    steadyJobs: number;
    steadySeconds: number;
    repetitions: number;
    peerOutput?: boolean;
  };
  const output = w.peerOutput
    ? " Every system captures each run's output (stdout and stderr through pipes) and stores it with the result, as CronQ always does."
    : " CronQ captures each run's output (job log, output tail stored with the run); the ceiling and the peers throw it away (`stdio: 'ignore'`).";
  const head = `| figure | ${systems.map((n) => NAMES[n] ?? n).join(' | ')} | ${others.map((o) => `CronQ ÷ ${NAMES[o] ?? o}`).join(' | ')} |`;
  const sep = `|${'---|'.repeat(1 + systems.length + others.length)}`;
  const row = (
    label: string,
    key: (n: string) => string,
    digits: number,
    ratio?: (o: string) => string,
    ratioDigits = 2,
  ) =>
    `| ${label} | ${systems.map((n) => cell(s[key(n)], digits)).join(' | ')} | ${others.map((o) => (ratio ? cell(s[ratio(o)], ratioDigits) : '')).join(' | ')} |`;
  const rowPerRep = (label: string, key: (n: string) => string) =>
    `| ${label} | ${systems.map((n) => (n === 'ceiling' ? '—' : perRep(s[key(n)]))).join(' | ')} | ${others.map(() => '').join(' | ')} |`;
  const steady = (n: string, k: string) => (n === 'ceiling' ? '-' : `steady.${n}.${k}`);
  return [
    `Burst: ${fmt(w.burstJobs)} jobs due at one instant, \`/bin/sh -c true\`, 2 workers × concurrency 16. Steady: ${fmt(w.steadyJobs)} jobs every second for ${w.steadySeconds} s. ${w.repetitions} repetition${w.repetitions === 1 ? '' : 's'}; cells are median [min–max].${output}`,
    '',
    head,
    sep,
    row(
      `burst: due → all ${fmt(w.burstJobs)} results stored (ms, lower is better)`,
      (n) => `burst.${n}.completion_ms`,
      0,
    ),
    row(
      'burst: runs/s (ratio > 1: CronQ faster)',
      (n) => `burst.${n}.runs_per_s`,
      0,
      (o) => `ratio.burst_runs_per_s.cronq_over_${o}`,
    ),
    row(
      'steady: runs/s sustained (ratio > 1: CronQ more)',
      (n) => steady(n, 'runs_per_s'),
      1,
      (o) => (o === 'ceiling' ? '-' : `ratio.steady_runs_per_s.cronq_over_${o}`),
    ),
    row(
      'steady: dispatch lag p50 (ms; ratio < 1: CronQ sooner)',
      (n) => steady(n, 'lag_p50_ms'),
      0,
      (o) => (o === 'ceiling' ? '-' : `ratio.lag_p50.cronq_over_${o}`),
    ),
    row(
      'steady: dispatch lag p99 (ms; ratio < 1: CronQ sooner)',
      (n) => steady(n, 'lag_p99_ms'),
      0,
      (o) => (o === 'ceiling' ? '-' : `ratio.lag_p99.cronq_over_${o}`),
    ),
    rowPerRep('steady: missed occurrences (each repetition)', (n) => `steady.${n}.missed`),
    rowPerRep('steady: duplicated runs (each repetition)', (n) => `steady.${n}.duplicated`),
    '',
  ].join('\n');
}

/** CPU ms per run during the burst, by process group, median over the repetitions. */
export function cpuTable(e2e: { summary: Summary } | undefined): string {
  if (!e2e) return '';
  const s = e2e.summary;
  const systems = ['cronq', 'cronq_policies', 'ceiling', 'bullmq', 'pgboss'].filter(
    (n) => s[`cpu.${n}.total`],
  );
  if (!systems.length) return '';
  const groups = new Set<string>();
  for (const k of Object.keys(s)) {
    const m = /^cpu\.([^.]+)\.(.+)$/.exec(k);
    if (m && systems.includes(m[1]!) && m[2] !== 'total') groups.add(m[2]!);
  }
  const order = ['injector', 'runners', 'results', 'workers', 'driver', 'shells'];
  const rank = (g: string) => (order.includes(g) ? order.indexOf(g) : order.length);
  const cols = [...groups]
    .filter((g) => systems.some((n) => (s[`cpu.${n}.${g}`]?.median ?? 0) > 0))
    .sort((a, b) => rank(a) - rank(b) || a.localeCompare(b));
  const lines = [
    'CPU milliseconds per run during the burst (from the due instant until all stored; /proc, all processes of each service counted — anything else using the service meanwhile is included):',
    '',
    `| system | total | ${cols.join(' | ')} |`,
    `|${'---|'.repeat(2 + cols.length)}`,
  ];
  for (const n of systems)
    lines.push(
      `| ${NAMES[n] ?? n} | ${cell(s[`cpu.${n}.total`], 2)} | ${cols.map((g) => (s[`cpu.${n}.${g}`] ? cell(s[`cpu.${n}.${g}`], 2) : '—')).join(' | ')} |`,
    );
  lines.push('');
  return lines.join('\n');
}

interface ScaleCase {
  jobs: number;
  due: number;
  cycleMs: Spread;
  perDueJobMs: Spread;
  probeIdleMs: Spread;
}

export function scaleTable(
  scale:
    | { cases: Record<string, ScaleCase>; ratios: Record<string, number>; batchSize: number }
    | undefined,
): string {
  if (!scale) return '_scale benchmark not run_\n';
  const lines = [
    `Injector wake-up (probe + claim in batches of ${scale.batchSize}; publishing excluded), median [min–max] of the cycles:`,
    '',
    '| jobs defined | due | cycle (ms) | per due job (ms) | idle probe (ms) |',
    '|---|---|---|---|---|',
  ];
  for (const c of Object.values(scale.cases)) {
    lines.push(
      `| ${fmt(c.jobs)} | ${fmt(c.due)} | ${cell(c.cycleMs, 1)} | ${cell(c.perDueJobMs, 3)} | ${cell(c.probeIdleMs, 2)} |`,
    );
  }
  lines.push(
    '',
    '| ratio (should be ≈ 1: cost does not grow with the jobs defined) | value |',
    '|---|---|',
  );
  for (const [k, v] of Object.entries(scale.ratios)) lines.push(`| ${k} | ${fmt(v, 2)} |`);
  lines.push('');
  return lines.join('\n');
}

/** Numeric leaves of a component benchmark's JSON, as `path | value` rows (arrays left out). */
export function componentTable(name: string, result: unknown): string {
  const rows: string[] = [];
  const walk = (v: unknown, path: string) => {
    if (rows.length >= 60) return;
    if (typeof v === 'number' || typeof v === 'boolean')
      rows.push(
        `| ${path} | ${typeof v === 'number' ? fmt(v, Number.isInteger(v) ? 0 : 3) : String(v)} |`,
      );
    else if (v && typeof v === 'object' && !Array.isArray(v))
      for (const [k, x] of Object.entries(v)) walk(x, path ? `${path}.${k}` : k);
  };
  const r = result as { error?: string } | undefined;
  if (!r) return `### ${name}\n\n_not run_\n`;
  if (r.error) return `### ${name}\n\n_failed: ${r.error.split('\n')[0]}_\n`;
  walk(result, '');
  return [`### ${name}`, '', '| figure | value |', '|---|---|', ...rows, ''].join('\n');
}
