'use strict';
/**
 * Which run a job's status columns describe, by its scheduled_for (unique
 * per job, so an exact pointer): `current_run_for` for current_status and
 * last_run_start (the newest run that has started), `last_result_for` for
 * last_run_status and last_run_stop (the newest run that has ended). The
 * results consumer moves them only forward, so an old run's late result
 * never overwrites a newer run's status, whatever order results arrive in,
 * without rescanning the job's run history on every batch.
 * NULL (rows written before this column) means "no run seen yet".
 */
const added = {
  current_run_for: (t) => t.dateTime('current_run_for', { precision: 3 }).nullable(),
  last_result_for: (t) => t.dateTime('last_result_for', { precision: 3 }).nullable(),
};

exports.up = async function up(knex) {
  for (const [name, add] of Object.entries(added)) {
    if (!(await knex.schema.hasColumn('jobs', name))) {
      await knex.schema.alterTable('jobs', (t) => add(t));
    }
  }
};

exports.down = async function down() {};
