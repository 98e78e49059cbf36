'use strict';
/**
 * What the new design keeps per job: the schedule as written (the original
 * kept only a fixed interval, so P1M drifted), a per-job timeout, a
 * description, and when a bounded schedule (Rn/...) ran out. next_run gains
 * milliseconds so a PT1S schedule is dispatched on time.
 */

const added = {
  schedule: (t) => t.string('schedule', 255).nullable(),
  timeout: (t) => t.integer('timeout').nullable(),
  description: (t) => t.text('description').nullable(),
  ended_at: (t) => t.dateTime('ended_at', { precision: 3 }).nullable(),
  schedule_error: (t) => t.string('schedule_error', 512).nullable(),
};

exports.up = async function up(knex) {
  for (const [name, add] of Object.entries(added)) {
    if (!(await knex.schema.hasColumn('jobs', name))) {
      await knex.schema.alterTable('jobs', (t) => add(t));
    }
  }
  await knex.raw('ALTER TABLE jobs MODIFY next_run DATETIME(3) NULL');
  const [idx] = await knex.raw("SHOW INDEX FROM jobs WHERE Key_name IN ('idx_jobs_next_run', 'idx_jobs_run_now')");
  const have = new Set(idx.map((r) => r.Key_name));
  if (!have.has('idx_jobs_next_run')) await knex.raw('CREATE INDEX idx_jobs_next_run ON jobs (next_run)');
  if (!have.has('idx_jobs_run_now')) await knex.raw('CREATE INDEX idx_jobs_run_now ON jobs (run_now)');
};

exports.down = async function down() {};
