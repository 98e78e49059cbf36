'use strict';
/**
 * Notifications (docs/notifications.md): the outbox the results consumer
 * writes in the same transaction as the result that causes them, and the
 * attempts its sender makes.
 *
 * notifications: one row per (event, target). `state` pending → sent, or
 * failed after 24 h of attempts. `next_at` is when it may be tried next;
 * a sender that claims a row (FOR UPDATE SKIP LOCKED) moves it a lease
 * ahead, so no other consumer takes it while it is being sent.
 *
 * The repeat_after rule reads when each target was last told of a job's
 * failing streak from these rows (idx_notifications_job), so no other
 * table is written with them.
 *
 * notification_attempts: each attempt's time, HTTP status or error.
 */
exports.up = async function up(knex) {
  if (!(await knex.schema.hasTable('notifications'))) {
    await knex.schema.createTable('notifications', (t) => {
      t.bigIncrements('id').primary();
      t.integer('job_id').notNullable();
      t.string('job_name', 255).nullable();
      t.string('category', 255).nullable();
      t.specificType('run_id', 'CHAR(32)').nullable();
      t.string('event', 16).notNullable();
      t.integer('failures').notNullable().defaultTo(0);
      t.string('target_key', 16).notNullable();
      t.text('target').notNullable();
      t.enu('state', ['pending', 'sent', 'failed']).notNullable().defaultTo('pending');
      t.integer('attempts').notNullable().defaultTo(0);
      t.dateTime('created_at', { precision: 3 }).notNullable();
      t.dateTime('next_at', { precision: 3 }).notNullable();
      t.dateTime('sent_at', { precision: 3 }).nullable();
      t.integer('last_status').nullable();
      t.string('last_error', 255).nullable();
      t.index(['state', 'next_at'], 'idx_notifications_due');
      t.index(['job_id', 'id'], 'idx_notifications_job');
      t.index(['run_id'], 'idx_notifications_run');
    });
  }
  if (!(await knex.schema.hasTable('notification_attempts'))) {
    await knex.schema.createTable('notification_attempts', (t) => {
      t.bigIncrements('id').primary();
      t.bigInteger('notification_id').unsigned().notNullable();
      t.dateTime('at', { precision: 3 }).notNullable();
      t.integer('status_code').nullable();
      t.string('error', 255).nullable();
      t.integer('duration_ms').notNullable();
      t.index(['notification_id'], 'idx_attempts_notification');
      t.foreign('notification_id').references('notifications.id').onDelete('CASCADE');
    });
  }
};

exports.down = async function down() {};
