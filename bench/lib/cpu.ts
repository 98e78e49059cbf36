/**
 * CPU time spent during a measurement, per group of processes, read from
 * /proc (Linux only; elsewhere every figure is NaN). On a 2-core machine the
 * burst is CPU-bound, so CPU milliseconds per run say where the time goes:
 * in the system's own processes, in its broker/database, or in the shells.
 */
import { readFileSync, readdirSync } from 'node:fs';

const TICK_MS = 10; // USER_HZ is 100 on Linux

interface ProcTimes {
  self: number;
  children: number;
}

function readTimes(pid: number): ProcTimes | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // comm may contain spaces: fields start after the last ')'.
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return {
      self: (Number(f[11]) + Number(f[12])) * TICK_MS,
      children: (Number(f[13]) + Number(f[14])) * TICK_MS,
    };
  } catch {
    return undefined;
  }
}

/** Pids whose command name is one of `names` (e.g. mariadbd, beam.smp). */
export function pidsByName(names: readonly string[]): number[] {
  const out: number[] = [];
  let entries: string[] = [];
  try {
    entries = readdirSync('/proc');
  } catch {
    return out;
  }
  for (const e of entries) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const comm = readFileSync(`/proc/${e}/comm`, 'utf8').trim();
      if (names.includes(comm)) out.push(Number(e));
    } catch {
      // gone
    }
  }
  return out;
}

export const SERVICE_PROCESSES: Record<string, string[]> = {
  mariadb: ['mariadbd', 'mysqld'],
  rabbitmq: ['beam.smp'],
  redis: ['redis-server'],
  postgres: ['postgres'],
};

export interface CpuGroups {
  /** Process groups measured with their reaped children (the spawned shells). */
  own: Record<string, number[]>;
}

export type CpuSample = Record<string, { self: number; children: number }>;

export function sampleCpu(groups: CpuGroups): CpuSample {
  const out: CpuSample = {};
  for (const [name, pids] of Object.entries(groups.own)) {
    const acc = { self: 0, children: 0 };
    for (const pid of pids) {
      const t = readTimes(pid);
      if (t) {
        acc.self += t.self;
        acc.children += t.children;
      }
    }
    out[name] = acc;
  }
  // Services: every process of that name, looked up now (postgres forks a backend per connection).
  for (const [name, comms] of Object.entries(SERVICE_PROCESSES)) {
    const acc = { self: 0, children: 0 };
    for (const pid of pidsByName(comms)) {
      const t = readTimes(pid);
      if (t) acc.self += t.self;
    }
    out[`service:${name}`] = acc;
  }
  return out;
}

/**
 * CPU ms per run between two samples: each own group's processes, the
 * shells they spawned (reaped children, summed as "shells"), and each
 * service. Service figures include anyone else using that service meanwhile.
 */
export function cpuPerRun(
  before: CpuSample,
  after: CpuSample,
  runs: number,
): Record<string, number> {
  const out: Record<string, number> = {};
  let shells = 0;
  let total = 0;
  for (const [name, a] of Object.entries(after)) {
    const b = before[name] ?? { self: 0, children: 0 };
    const self = Math.max(0, a.self - b.self);
    const children = Math.max(0, a.children - b.children);
    out[name] = Math.round((self / runs) * 1000) / 1000;
    shells += children;
    total += self + children;
  }
  out.shells = Math.round((shells / runs) * 1000) / 1000;
  out.total = Math.round((total / runs) * 1000) / 1000;
  return out;
}
