/**
 * Fixtures for the tests of job policies: a job's runs as the ledger holds
 * them, and the check that its occurrences are each covered once.
 */
import type { Knex } from '../../src/core/db';

export interface LedgerRow {
  run_id: string;
  job_id: number;
  scheduled_for: Date;
  triggered_by: string;
  status: string;
  reason: string | null;
  missed: number;
  queued_at: Date;
  published_at: Date | null;
}

export async function ledger(db: Knex, jobId: number): Promise<LedgerRow[]> {
  return (await db('runs')
    .where({ job_id: jobId })
    .orderBy('scheduled_for')
    .select(
      'run_id',
      'job_id',
      'scheduled_for',
      'triggered_by',
      'status',
      'reason',
      'missed',
      'queued_at',
      'published_at',
    )) as LedgerRow[];
}

/**
 * Every occurrence of a PTnS job from its first row on is covered once: a
 * run covers itself and the occurrences counted on it (`missed`); a missed
 * record covers `missed` occurrences from its own.
 */
export function tilingProblems(rows: LedgerRow[], periodMs: number): string[] {
  const problems: string[] = [];
  const list = rows.filter((r) => r.triggered_by === 'schedule');
  for (let i = 1; i < list.length; i++) {
    const prev = list[i - 1]!;
    const cover = prev.status === 'missed' ? prev.missed : prev.missed + 1;
    const expected = prev.scheduled_for.getTime() + cover * periodMs;
    if (list[i]!.scheduled_for.getTime() !== expected)
      problems.push(
        `after ${prev.scheduled_for.toISOString()} (${prev.status}, missed ${prev.missed}) came ${list[i]!.scheduled_for.toISOString()}, expected ${new Date(expected).toISOString()}`,
      );
  }
  return problems;
}

/** The database's clock, which decides what is due. */
export async function dbNow(db: Knex): Promise<Date> {
  const [rows] = (await db.raw('SELECT UTC_TIMESTAMP(3) AS now')) as unknown as [[{ now: Date }]];
  return rows[0].now;
}
