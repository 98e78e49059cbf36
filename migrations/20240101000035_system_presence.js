'use strict';
/**
 * What /system shows of the daemons that are not in the ledger: each runner
 * process as it last announced itself (cronq_presence messages, written by
 * the results consumer), and each injector process as it last recorded a
 * cycle. One row per process (host.pid, and the queue for a runner), kept
 * small: rows not heard from for a week are deleted by whoever writes.
 */
exports.up = async function up(knex) {
  if (!(await knex.schema.hasTable('runners'))) {
    await knex.schema.createTable('runners', (t) => {
      t.string('instance', 255).notNullable();
      t.string('queue', 255).notNullable();
      t.string('host', 255).notNullable();
      t.integer('pid').notNullable();
      t.integer('concurrency').notNullable();
      t.integer('running').notNullable();
      t.string('version', 64).notNullable();
      t.dateTime('started_at', { precision: 3 }).nullable();
      t.integer('period_ms').notNullable();
      t.dateTime('seen_at', { precision: 3 }).notNullable();
      t.primary(['instance', 'queue']);
      t.index(['seen_at'], 'idx_runners_seen');
    });
  }
  if (!(await knex.schema.hasTable('injectors'))) {
    await knex.schema.createTable('injectors', (t) => {
      t.string('claimant', 255).notNullable().primary();
      t.string('version', 64).notNullable();
      t.dateTime('started_at', { precision: 3 }).nullable();
      t.dateTime('cycle_at', { precision: 3 }).notNullable();
      t.integer('lag_ms').nullable();
      t.integer('claimed').notNullable().defaultTo(0);
      t.index(['cycle_at'], 'idx_injectors_cycle');
    });
  }
};

exports.down = async function down() {};
