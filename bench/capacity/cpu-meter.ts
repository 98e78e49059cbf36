/**
 * CPU time of groups of processes over one measurement, from /proc (Linux).
 * A group is a function returning its pids, asked at the start and at the
 * end, so processes that appear meanwhile (a postgres backend) count too.
 */
import { readFileSync, readdirSync } from 'node:fs';

const TICK_MS = 10; // USER_HZ is 100 on Linux

function cpuMs(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) * TICK_MS;
  } catch {
    return 0;
  }
}

/** Pids whose command name is `comm` and whose command line matches `cmdline` (when given). */
export function pidsOf(comm: string, cmdline?: (line: string) => boolean): number[] {
  const out: number[] = [];
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    try {
      if (readFileSync(`/proc/${e}/comm`, 'utf8').trim() !== comm) continue;
      if (cmdline && !cmdline(readFileSync(`/proc/${e}/cmdline`, 'utf8').replace(/\0/g, ' ')))
        continue;
      out.push(Number(e));
    } catch {
      // gone
    }
  }
  return out;
}

/** The shared RabbitMQ node's beam (not the cluster nodes of scripts/rabbitmq-cluster.sh, not CLI tools). */
export function sharedBrokerPids(): number[] {
  return pidsOf('beam.smp', (l) => !/cq\d@localhost/.test(l) && !l.includes('-hidden'));
}

/** Busy and total jiffies of the whole machine. */
function machine(): { busy: number; total: number } {
  const f = readFileSync('/proc/stat', 'utf8')
    .split('\n')[0]!
    .trim()
    .split(/\s+/)
    .slice(1)
    .map(Number);
  const idle = (f[3] ?? 0) + (f[4] ?? 0);
  const total = f.reduce((a, b) => a + b, 0);
  return { busy: total - idle, total };
}

export class CpuMeter {
  private startTimes = new Map<string, Map<number, number>>();
  private groups: Record<string, () => number[]> = {};
  private machineStart = machine();

  start(groups: Record<string, number[] | (() => number[])>): void {
    this.groups = Object.fromEntries(
      Object.entries(groups).map(([k, v]) => [k, typeof v === 'function' ? v : () => v]),
    );
    this.startTimes.clear();
    for (const [name, pids] of Object.entries(this.groups)) {
      const m = new Map<number, number>();
      for (const pid of pids()) m.set(pid, cpuMs(pid));
      this.startTimes.set(name, m);
    }
    this.machineStart = machine();
  }

  /** CPU ms of each group since start, and `machineBusy`: the share of all cores busy (0-1). */
  stop(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const [name, pids] of Object.entries(this.groups)) {
      const before = this.startTimes.get(name) ?? new Map<number, number>();
      let sum = 0;
      for (const pid of new Set([...pids(), ...before.keys()]))
        sum += Math.max(0, cpuMs(pid) - (before.get(pid) ?? 0));
      out[name] = sum;
    }
    const m = machine();
    out.machineBusy =
      (m.busy - this.machineStart.busy) / Math.max(1, m.total - this.machineStart.total);
    return out;
  }
}
