'use strict';
/**
 * Runs the injector records `missed` itself (catch-up skipped occurrences,
 * a starting deadline already passed when claimed) have no result message,
 * so nothing in the results path would notify them (docs/notifications.md).
 *
 * run_notices: an outbox from the injector to cronq-results. The injector
 * writes one row per missed run in the claim transaction that records the
 * run; a results consumer takes rows (FOR UPDATE SKIP LOCKED, oldest first
 * on idx_run_notices_created), writes the run's notifications under its
 * job's row lock and deletes them in one transaction. So a notice exists
 * exactly while its run is recorded and not yet notified, and is taken
 * once however many consumers run. No foreign key: a notice whose job was
 * removed is simply deleted when taken, and the claim takes no extra lock.
 * Rows live for a second or two; the table stays small.
 */
exports.up = async function up(knex) {
  if (!(await knex.schema.hasTable('run_notices'))) {
    await knex.schema.createTable('run_notices', (t) => {
      t.specificType('run_id', 'CHAR(32)').notNullable().primary();
      t.integer('job_id').notNullable();
      t.dateTime('created_at', { precision: 3 }).notNullable();
      t.index(['created_at'], 'idx_run_notices_created');
    });
  }
};

exports.down = async function down() {};
