'use strict';
/**
 * GET /api/runs without a job filter lists runs newest first by queued_at:
 * with this index it reads one page from the end instead of sorting every
 * run. (A job's own list uses idx_runs_job_queued.)
 */
exports.up = async function up(knex) {
  const [rows] = await knex.raw("SHOW INDEX FROM runs WHERE Key_name = 'idx_runs_queued'");
  if (rows.length === 0) {
    await knex.schema.alterTable('runs', (t) => t.index(['queued_at'], 'idx_runs_queued'));
  }
};

exports.down = async function down() {};
