'use strict';
/**
 * Notifications and the dead-man's switch (docs/notifications.md).
 *
 * categories:
 * - `notify`: the category file's `notify` targets as written, JSON text;
 *   NULL = none (the global CRONQ_NOTIFY_* targets still apply).
 *
 * jobs (written by the results consumer under the job's row lock):
 * - `alert_after_ms`: the job's `alert_after` in milliseconds (also in
 *   jobs.policies as written); NULL = no overdue alert.
 * - `alert_base_at`: when the overdue clock started: the last success, or
 *   when alert_after was first set. Overdue = older than alert_after_ms.
 * - `overdue_since`: set when the job went overdue; cleared by a success.
 * - `failing_since`, `failures`: the current run of final failures (first
 *   failure's time, how many since); cleared by a success.
 *
 * A Python cronq sharing the database ignores every new column.
 */
const columns = {
  categories: {
    notify: (t) => t.text('notify').nullable(),
  },
  jobs: {
    alert_after_ms: (t) => t.bigInteger('alert_after_ms').nullable(),
    alert_base_at: (t) => t.dateTime('alert_base_at', { precision: 3 }).nullable(),
    overdue_since: (t) => t.dateTime('overdue_since', { precision: 3 }).nullable(),
    failing_since: (t) => t.dateTime('failing_since', { precision: 3 }).nullable(),
    failures: (t) => t.integer('failures').notNullable().defaultTo(0),
  },
};

exports.up = async function up(knex) {
  for (const [table, cols] of Object.entries(columns)) {
    for (const [name, add] of Object.entries(cols)) {
      if (!(await knex.schema.hasColumn(table, name))) {
        await knex.schema.alterTable(table, (t) => add(t));
      }
    }
  }
  const [rows] = await knex.raw("SHOW INDEX FROM jobs WHERE Key_name = 'idx_jobs_overdue'");
  if (rows.length === 0) {
    // The overdue sweep reads only jobs with an alert that are not overdue yet.
    await knex.schema.alterTable('jobs', (t) =>
      t.index(['overdue_since', 'alert_after_ms'], 'idx_jobs_overdue'),
    );
  }
};

exports.down = async function down() {};
