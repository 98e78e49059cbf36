'use strict';
/**
 * One row per run. The unique key on (job_id, scheduled_for) is what makes
 * an occurrence of a schedule exist once, however many injectors claim.
 * No foreign key to jobs: a run outlives its job (results for a removed job
 * are still recorded, and the failures page still shows its name).
 */
exports.up = async function up(knex) {
  if (await knex.schema.hasTable('runs')) return;
  await knex.schema.createTable('runs', (t) => {
    t.specificType('run_id', 'CHAR(32)').primary();
    t.integer('job_id').notNullable();
    t.specificType('job_name', 'CHAR(255)').nullable();
    t.dateTime('scheduled_for', { precision: 3 }).notNullable();
    t.enum('triggered_by', ['schedule', 'manual']).notNullable().defaultTo('schedule');
    // queued, running, succeeded, failed, timed_out, lost
    t.string('status', 16).notNullable().defaultTo('queued');
    t.string('routing_key', 32).nullable();
    t.specificType('claimed_by', 'CHAR(64)').nullable();
    t.string('host', 255).nullable();
    t.dateTime('queued_at', { precision: 3 }).notNullable();
    t.dateTime('published_at', { precision: 3 }).nullable();
    t.dateTime('started_at', { precision: 3 }).nullable();
    t.dateTime('finished_at', { precision: 3 }).nullable();
    t.dateTime('heartbeat_at', { precision: 3 }).nullable();
    t.integer('return_code').nullable();
    t.double('run_time').nullable();
    t.specificType('output_tail', 'MEDIUMTEXT').nullable();
    t.string('reason', 1024).nullable();
    t.integer('missed').notNullable().defaultTo(0);
    t.unique(['job_id', 'scheduled_for'], { indexName: 'uniq_runs_job_occurrence' });
    t.index(['job_id', 'queued_at'], 'idx_runs_job_queued');
    t.index(['status', 'heartbeat_at'], 'idx_runs_status_heartbeat');
    t.index(['status', 'finished_at'], 'idx_runs_status_finished');
    t.index(['published_at', 'status'], 'idx_runs_unpublished');
  });
};

exports.down = async function down() {};
