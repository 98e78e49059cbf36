'use strict';
/**
 * Results are written idempotently: each event row written by CronQ carries
 * a key unique per (run, event type), so a redelivered message inserts
 * nothing. The column is nullable, so the original's rows (NULL) never
 * collide. The (job_id, id) index serves per-job history and the pruner.
 */
exports.up = async function up(knex) {
  if (!(await knex.schema.hasColumn('events', 'message_key'))) {
    await knex.schema.alterTable('events', (t) => {
      t.string('message_key', 64).nullable();
    });
  }
  const [idx] = await knex.raw("SHOW INDEX FROM events WHERE Key_name IN ('uniq_events_message_key', 'idx_events_job_id_id', 'idx_events_run_id')");
  const have = new Set(idx.map((r) => r.Key_name));
  if (!have.has('uniq_events_message_key')) await knex.raw('CREATE UNIQUE INDEX uniq_events_message_key ON events (message_key)');
  if (!have.has('idx_events_job_id_id')) await knex.raw('CREATE INDEX idx_events_job_id_id ON events (job_id, id)');
  if (!have.has('idx_events_run_id')) await knex.raw('CREATE INDEX idx_events_run_id ON events (run_id)');
};

exports.down = async function down() {};
