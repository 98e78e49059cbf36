'use strict';
/**
 * Job policies (docs/policies.md).
 *
 * jobs:
 * - `policies`: the job's policy fields as its category file wrote them
 *   (overlap, catch_up, catch_up_limit, starting_deadline, retries), JSON
 *   text, read by src/core/policies; NULL = the defaults, the original
 *   cronq's behaviour.
 * - `enabled`: declared by the category file, set on every PUT.
 * - `paused_at`, `paused_by`: the runtime pause, set and cleared only by
 *   the pause/resume API, so a category PUT leaves it as it is.
 *   A job is claimed only when enabled and not paused.
 * - `active_run_id`: with overlap "forbid", the run that is not final yet
 *   (queued, running, or waiting for a retry). The claim reads it under the
 *   job's row lock and the results consumer clears it when that run ends,
 *   so the overlap check and the claim are one atomic step, without
 *   scanning the job's run history.
 *
 * runs:
 * - `triggered_by` gains `retry`.
 * - `attempt` (1 = the first run) and `first_run_id` link a retry to the
 *   run it retries.
 * - `not_before`: a retry waits in the ledger until then, unpublished.
 *
 * A Python cronq sharing the database ignores every new column.
 */
const jobColumns = {
  policies: (t) => t.text('policies').nullable(),
  enabled: (t) => t.boolean('enabled').notNullable().defaultTo(true),
  paused_at: (t) => t.dateTime('paused_at', { precision: 3 }).nullable(),
  paused_by: (t) => t.string('paused_by', 255).nullable(),
  active_run_id: (t) => t.specificType('active_run_id', 'CHAR(32)').nullable(),
};
const runColumns = {
  attempt: (t) => t.integer('attempt').notNullable().defaultTo(1),
  first_run_id: (t) => t.specificType('first_run_id', 'CHAR(32)').nullable(),
  not_before: (t) => t.dateTime('not_before', { precision: 3 }).nullable(),
};

exports.up = async function up(knex) {
  for (const [table, columns] of [
    ['jobs', jobColumns],
    ['runs', runColumns],
  ]) {
    for (const [name, add] of Object.entries(columns)) {
      if (!(await knex.schema.hasColumn(table, name))) {
        await knex.schema.alterTable(table, (t) => add(t));
      }
    }
  }
  await knex.raw(
    "ALTER TABLE runs MODIFY triggered_by ENUM('schedule','manual','retry') NOT NULL DEFAULT 'schedule'",
  );
};

exports.down = async function down() {};
