import type { Knex } from '../core/db';
import { dbNow } from '../core/db';
import { ValidationError } from '../core/errors';
import { secondsToInterval, type JobRow } from '../core/jobs';
import type { CategoryDefinition, JobDefinition } from '../core/category';
import { duplicateNameProblems, nameKey } from '../core/category-names';
import { parseSchedule } from '../core/schedule';
import { POLICY_FIELDS } from '../core/policies';
import { canonicalJson, storedPolicyFields } from '../core/category-policies';
import { parseJobPolicies } from '../core/policies';
import { targetLabel, targetsOfText } from '../core/notify/targets';

/**
 * Replace a category with the jobs of a definition, in ONE transaction:
 * create the category if needed, add or update every listed job (matched
 * by name, so a kept job keeps its id and history), delete the category's
 * jobs that are not listed (their runs stay; their events cascade).
 *
 * Names are matched by nameKey (core/category-names.ts), the rule the
 * validator and the name columns' collation share, so the plan of a dry run
 * is what the PUT does.
 */

export interface CategoryPlan {
  added: string[];
  changed: string[];
  removed: string[];
  unchanged: string[];
  /** For each changed job, the fields that change (`schedule`, `overlap`, `retries`, ...). */
  changedFields: Record<string, string[]>;
  /** The category's `notify` targets change (docs/notifications.md). */
  notifyChanged: boolean;
  /** Where the new `notify` sends, in words (targetLabel); [] for none. */
  notify: string[];
}

/** categories.notify as a PUT of `def` writes it. */
function notifyText(def: CategoryDefinition): string | null {
  return def.notify === null ? null : JSON.stringify(def.notify);
}

function notifyPlan(stored: string | null | undefined, def: CategoryDefinition) {
  let before = 'null';
  try {
    if (stored) before = canonicalJson(JSON.parse(stored) as unknown);
  } catch {
    before = 'unreadable';
  }
  return {
    notifyChanged: before !== canonicalJson(def.notify ?? null),
    notify: targetsOfText(notifyText(def)).map(targetLabel),
  };
}

/** The fields of a kept job that `def` changes, in the file's words (empty: unchanged). */
export function changedFields(row: JobRow, def: JobDefinition): string[] {
  const out: string[] = [];
  if (row.name !== def.name) out.push('name');
  if ((row.schedule ?? '') !== def.schedule) out.push('schedule');
  if ((row.command ?? '') !== def.command) out.push('command');
  if ((row.routing_key ?? 'default') !== def.routing_key) out.push('routing_key');
  if ((row.timeout ?? null) !== def.timeout) out.push('timeout');
  if ((row.description ?? null) !== def.description) out.push('description');
  const before = storedPolicyFields(row.policies);
  for (const f of POLICY_FIELDS) {
    if (f === 'enabled') {
      if (!!(row.enabled ?? 1) !== def.enabled) out.push(f);
    } else if (canonicalJson(before[f] ?? null) !== canonicalJson(def.policies?.[f] ?? null))
      out.push(f);
  }
  return out;
}

function definitionColumns(def: JobDefinition) {
  const schedule = parseSchedule(def.schedule);
  const period = schedule.fixedPeriodSeconds;
  return {
    name: def.name,
    command: def.command,
    routing_key: def.routing_key,
    timeout: def.timeout,
    description: def.description,
    schedule: def.schedule,
    // The pause (paused_at, paused_by) is the runtime's: a PUT never touches it.
    policies: def.policies === null ? null : JSON.stringify(def.policies),
    enabled: def.enabled,
    alert_after_ms: def.policies?.alert_after
      ? parseJobPolicies({ alert_after: def.policies.alert_after }).policies.alertAfterMs
      : null,
    // The original's column: the period as a DATETIME counted from 1970-01-01.
    interval:
      period !== null && period !== undefined && period > 0 ? secondsToInterval(period) : null,
  };
}

function timing(def: JobDefinition, now: Date) {
  const next = parseSchedule(def.schedule).next(now);
  return { next_run: next, schedule_error: null, ended_at: next === null ? now : null };
}

async function lockCategory(
  trx: Knex.Transaction,
  name: string,
  create: boolean,
): Promise<{ id: number; notify: string | null } | null> {
  if (create) {
    // Two PUTs creating the same category at once: both end up with the one row.
    await trx.raw('INSERT INTO categories (name) VALUES (?) ON DUPLICATE KEY UPDATE id = id', [
      name,
    ]);
  }
  const row = (await trx('categories')
    .select('id', 'notify')
    .where('name', name)
    .forUpdate()
    .first()) as { id: number; notify: string | null } | undefined;
  return row ?? null;
}

function plan(
  existing: JobRow[],
  def: CategoryDefinition,
  storedNotify: string | null | undefined,
): CategoryPlan & { byKey: Map<string, JobRow> } {
  const byKey = new Map(existing.map((j) => [nameKey(j.name), j]));
  const listed = new Set<string>();
  const p: CategoryPlan = {
    added: [],
    changed: [],
    removed: [],
    unchanged: [],
    changedFields: Object.create(null) as Record<string, string[]>,
    ...notifyPlan(storedNotify, def),
  };
  for (const j of def.jobs) {
    const k = nameKey(j.name);
    listed.add(k);
    const row = byKey.get(k);
    const fields = row ? changedFields(row, j) : [];
    if (!row) p.added.push(j.name);
    else if (fields.length === 0) p.unchanged.push(j.name);
    else {
      p.changed.push(j.name);
      p.changedFields[j.name] = fields;
    }
  }
  for (const [k, row] of byKey) if (!listed.has(k)) p.removed.push(row.name);
  return { ...p, byKey };
}

/** What applying `def` would do, without changing anything. */
export async function planCategory(
  db: Knex,
  categoryName: string,
  def: CategoryDefinition,
): Promise<CategoryPlan> {
  const cat = (await db('categories')
    .select('id', 'notify')
    .where('name', categoryName)
    .first()) as { id: number; notify: string | null } | undefined;
  const existing = cat ? ((await db('jobs').where('category_id', cat.id)) as JobRow[]) : [];
  const p: Partial<ReturnType<typeof plan>> = plan(existing, def, cat?.notify);
  delete p.byKey;
  return p as CategoryPlan;
}

export async function applyCategory(
  db: Knex,
  categoryName: string,
  def: CategoryDefinition,
): Promise<CategoryPlan> {
  // parseCategory refuses these already; a definition built another way must not reach the unique index.
  const dups = duplicateNameProblems(def.jobs);
  if (dups.length > 0) throw new ValidationError(`${dups[0]!.path}: ${dups[0]!.message}`, dups);
  try {
    return await db.transaction(async (trx) => {
      const category = (await lockCategory(trx, categoryName, true))!;
      const categoryId = category.id;
      const existing = (await trx('jobs').where('category_id', categoryId).forUpdate()) as JobRow[];
      const { byKey, ...p } = plan(existing, def, category.notify);
      const now = await dbNow(trx);
      if (p.notifyChanged)
        await trx('categories')
          .where('id', categoryId)
          .update({ notify: notifyText(def) });

      const listed = new Set(def.jobs.map((j) => nameKey(j.name)));
      const removedIds = existing.filter((row) => !listed.has(nameKey(row.name))).map((r) => r.id);
      for (let i = 0; i < removedIds.length; i += 1000)
        await trx('jobs')
          .whereIn('id', removedIds.slice(i, i + 1000))
          .delete();

      const inserts: Array<Record<string, unknown>> = [];
      for (const j of def.jobs) {
        const row = byKey.get(nameKey(j.name));
        if (!row) {
          inserts.push({
            ...definitionColumns(j),
            ...timing(j, now),
            category_id: categoryId,
            run_now: 0,
          });
        } else if (changedFields(row, j).length > 0) {
          const scheduleChanged = (row.schedule ?? '') !== j.schedule;
          await trx('jobs')
            .where('id', row.id)
            .update({ ...definitionColumns(j), ...(scheduleChanged ? timing(j, now) : {}) });
        }
      }
      for (let i = 0; i < inserts.length; i += 500)
        await trx('jobs').insert(inserts.slice(i, i + 500));
      // The overdue clock (docs/notifications.md) starts when alert_after is first set; a job
      // whose alert_after is removed is no longer overdue.
      await trx.raw(
        `UPDATE jobs SET alert_base_at = COALESCE(alert_base_at, ?),
           overdue_since = IF(alert_after_ms IS NULL, NULL, overdue_since)
         WHERE category_id = ? AND ((alert_after_ms IS NOT NULL AND alert_base_at IS NULL) OR (alert_after_ms IS NULL AND overdue_since IS NOT NULL))`,
        [now, categoryId],
      );
      return p;
    });
  } catch (err) {
    // A database whose name columns were not migrated to the exact collation still folds
    // case: say so plainly instead of a 500.
    if ((err as { code?: string }).code === 'ER_DUP_ENTRY') {
      throw new ValidationError(
        'jobs: two job names are the same for the database (run the migrations: names compare exactly since 20240101000027)',
        [{ path: 'jobs', message: 'two job names are the same for the database' }],
      );
    }
    throw err;
  }
}
