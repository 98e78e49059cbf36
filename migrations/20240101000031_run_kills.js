'use strict';
/**
 * Killing a run (docs/runner.md, "Killing a run"):
 *
 * runs:
 * - `killed_at`: when a kill was asked for (the Kill button, the API, or
 *   overlap replace); the run's status becomes `killed` when the runner
 *   reports its process group gone, or at once for a run not started yet.
 * - `killed_by`: who asked, `api from <addr>`, `admin from <addr>` or
 *   `overlap replace`, as jobs.paused_by says who paused.
 *
 * The status column is a VARCHAR(16): `killed` needs no change there.
 * A Python cronq sharing the database ignores both columns.
 */
const runColumns = {
  killed_at: (t) => t.dateTime('killed_at', { precision: 3 }).nullable(),
  killed_by: (t) => t.string('killed_by', 255).nullable(),
};

exports.up = async function up(knex) {
  for (const [name, add] of Object.entries(runColumns)) {
    if (!(await knex.schema.hasColumn('runs', name))) {
      await knex.schema.alterTable('runs', (t) => add(t));
    }
  }
};

exports.down = async function down() {};
