'use strict';
/**
 * Indexes for the injector's policy rules (docs/injector.md).
 *
 * - idx_jobs_due (enabled, paused_at, next_run): the due query and the probe
 *   ask for enabled, unpaused jobs by next_run. A disabled or paused job's
 *   next_run stays in the past (so catch_up can decide on resume); on
 *   idx_jobs_next_run alone every claim would read past all of them first.
 * - idx_runs_unpublished_due (published_at, status, not_before): retry runs
 *   wait unpublished until not_before; the probe's earliest not_before and
 *   the take of due retries are one range read on it.
 */
const indexes = {
  idx_jobs_due: 'CREATE INDEX idx_jobs_due ON jobs (enabled, paused_at, next_run)',
  idx_runs_unpublished_due:
    'CREATE INDEX idx_runs_unpublished_due ON runs (published_at, status, not_before)',
};

exports.up = async function up(knex) {
  for (const [name, sql] of Object.entries(indexes)) {
    const table = name.startsWith('idx_jobs') ? 'jobs' : 'runs';
    const [idx] = await knex.raw(`SHOW INDEX FROM ${table} WHERE Key_name = ?`, [name]);
    if (idx.length === 0) await knex.raw(sql);
  }
};

exports.down = async function down() {};
