'use strict';
/**
 * Facts one daemon records for another to show, one row per name. The web
 * has not the other daemons' settings, so e.g. cronq-results records here,
 * when it starts and only when they changed, the notification targets it
 * sends to for every job (`notify.global_targets`, as shown words: a
 * webhook by its origin only), and the job page reads them
 * (docs/notifications.md). Several writers: the last one wins.
 */
exports.up = async function up(knex) {
  if (!(await knex.schema.hasTable('settings'))) {
    await knex.schema.createTable('settings', (t) => {
      t.string('name', 64).notNullable().primary();
      t.text('value').notNullable();
      t.dateTime('updated_at', { precision: 3 }).notNullable();
    });
  }
};

exports.down = async function down() {};
