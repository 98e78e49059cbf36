'use strict';
/**
 * Serves "the newest runs of these jobs" (the admin's job list, GET /api/jobs)
 * from the index alone. runs' primary key is a random run_id, so a job's runs
 * lie on as many pages as it has runs; with a history larger than the buffer
 * pool, reading 10 runs of 100 jobs meant 1,000 random page reads. This index
 * keeps a job's recent runs together, carrying the columns those lists show
 * (run_id rides along as the primary key).
 */
exports.up = async function up(knex) {
  const [idx] = await knex.raw("SHOW INDEX FROM runs WHERE Key_name = 'idx_runs_job_recent'");
  if (idx.length > 0) return;
  await knex.raw('CREATE INDEX idx_runs_job_recent ON runs (job_id, queued_at, status, started_at, finished_at, return_code, host, triggered_by)');
};

exports.down = async function down() {};
