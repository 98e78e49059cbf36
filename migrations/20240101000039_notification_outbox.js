'use strict';
/**
 * Notifications cost a result batch one row (docs/notifications.md).
 *
 * notification_outbox: what one transaction of the results consumer (a
 * result batch, the lost-run sweep, the overdue check) decided to notify,
 * as one JSON array of notifications in `items`, written in that
 * transaction. The sender moves them into `notifications` (one row each,
 * where their attempts are counted) in a transaction of its own, taking
 * outbox rows FOR UPDATE SKIP LOCKED, so each is moved once by one
 * consumer. No secondary index: it is read oldest first and emptied.
 * `failed`: why a row could not be moved (it is set aside, kept for a
 * person to look at, and the rows after it go on); NULL for the others.
 *
 * jobs.notify_marks: JSON {target key: epoch ms} — when each target was
 * last told of the job's current failing streak (the repeat_after rule),
 * written with the job's failure state under its row lock. NULL: none.
 * Filled here from the notifications written before it.
 */
exports.up = async function up(knex) {
  if (!(await knex.schema.hasTable('notification_outbox'))) {
    await knex.schema.createTable('notification_outbox', (t) => {
      t.bigIncrements('id').primary();
      t.dateTime('created_at', { precision: 3 }).notNullable();
      t.specificType('items', 'MEDIUMTEXT').notNullable();
      t.string('failed', 255).nullable();
    });
  }
  if (!(await knex.schema.hasColumn('jobs', 'notify_marks')))
    await knex.schema.alterTable('jobs', (t) => t.text('notify_marks').nullable());
  // Filled for failing jobs without marks yet: a run of this migration that
  // stopped half way (the ALTER commits on its own) fills the rest when it
  // runs again.
  const [rows] = await knex.raw(
    `SELECT n.job_id, n.target_key, MAX(n.created_at) AS last_at
     FROM notifications n JOIN jobs j ON j.id = n.job_id
     WHERE j.failing_since IS NOT NULL AND j.notify_marks IS NULL
       AND n.event IN ('failed', 'timed_out', 'lost', 'missed') AND n.created_at >= j.failing_since
     GROUP BY n.job_id, n.target_key`,
  );
  const marks = new Map();
  for (const r of rows) {
    const m = marks.get(r.job_id) ?? {};
    m[r.target_key] = new Date(r.last_at).getTime();
    marks.set(r.job_id, m);
  }
  for (const [jobId, m] of marks)
    await knex('jobs')
      .where({ id: jobId })
      .update({ notify_marks: JSON.stringify(m) });
};

exports.down = async function down() {};
