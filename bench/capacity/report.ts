/** The capacity benchmark's figures as Markdown tables (for run-all's report and the README). */

interface Level {
  offered: number;
  runsPerSecond: number;
  lagMsP50: number;
  saturated: boolean;
  cpuMsPerRun: Record<string, number>;
  coreShare: Record<string, number>;
}

interface CapacityReport {
  cronq?: Array<{ queueType: string; levels: Level[]; sustained: number; peak?: number }>;
  quorumCostOfClassic?: number;
  quorumPeakCostOfClassic?: number;
  peers?: Array<{
    system?: string;
    runsPerSecond?: number;
    cpuMsPerRun?: Record<string, number>;
    error?: string;
    skipped?: string;
  }>;
  error?: string;
}

const PARTS = ['injector', 'rabbitmq', 'results', 'mariadb', 'simRunners'];

export function capacityTable(r: CapacityReport | undefined): string {
  if (!r || r.error) return `_failed: ${r?.error ?? 'not run'}_\n`;
  const lines = [
    '| queues | offered runs/s | finished runs/s | lag p50 ms | CPU ms/run: ' +
      PARTS.join(' / ') +
      ' | injector / results core share | machine busy | past capacity |',
    '|---|---:|---:|---:|---|---|---:|---|',
  ];
  for (const c of r.cronq ?? [])
    for (const l of c.levels)
      lines.push(
        `| ${c.queueType} | ${l.offered} | ${l.runsPerSecond} | ${l.lagMsP50} | ${PARTS.map((p) => l.cpuMsPerRun[p]?.toFixed(2) ?? '-').join(' / ')} | ${l.coreShare.injector} / ${l.coreShare.results} | ${Math.round((l.coreShare.machineBusy ?? 0) * 100)} % | ${l.saturated ? 'yes' : 'no'} |`,
      );
  lines.push('');
  for (const c of r.cronq ?? [])
    lines.push(
      `- ${c.queueType}: sustained ${c.sustained} runs/s (highest step finishing ≥ 95 % of its offered load); peak ${c.peak ?? '-'} runs/s`,
    );
  if (r.quorumCostOfClassic !== undefined)
    lines.push(
      `- quorum costs ${Math.round(r.quorumCostOfClassic * 100)} % of classic's sustained rate, ${Math.round((r.quorumPeakCostOfClassic ?? NaN) * 100)} % of its peak (negative: quorum was faster)`,
    );
  lines.push(
    '',
    '| peer (no-op workers) | jobs/s | CPU ms/job: workers / store / producer |',
    '|---|---:|---|',
  );
  for (const p of r.peers ?? [])
    lines.push(
      p.error || p.skipped
        ? `| ${p.system ?? 'peers'} | _${p.error ?? p.skipped}_ | |`
        : `| ${p.system} | ${Math.round(p.runsPerSecond ?? 0)} | ${['workers', 'store', 'producer'].map((k) => p.cpuMsPerRun?.[k]?.toFixed(2)).join(' / ')} |`,
    );
  return lines.join('\n') + '\n';
}
