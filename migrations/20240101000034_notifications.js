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
 * notify_marks: per job and target, when a failure was last sent and how
 * many were held back since (the repeat_after rule); deleted on recovery.
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
  if (!(await knex.schema.hasTable('notify_marks'))) {
    await knex.schema.createTable('notify_marks', (t) => {
      t.integer('job_id').notNullable();
      t.string('target_key', 16).notNullable();
      t.dateTime('last_at', { precision: 3 }).notNullable();
      t.integer('held').notNullable().defaultTo(0);
      t.primary(['job_id', 'target_key']);
    });
  }
};

exports.down = async function down() {};
