'use strict';
/**
 * The injector's outbox lease. A run is written (queued, published_at NULL)
 * before it is published; `publish_attempt_at` says when an injector last
 * took it to publish, so a run left unpublished by a crash or a broker
 * outage is taken again by one injector after CRONQ_INJECTOR_REPUBLISH_AFTER_MS,
 * not by every injector at once. NULL (rows written before this column) reads
 * as queued_at. The index serves the sweep for stale unpublished runs.
 */
exports.up = async function up(knex) {
  if (!(await knex.schema.hasColumn('runs', 'publish_attempt_at'))) {
    await knex.schema.alterTable('runs', (t) => {
      t.dateTime('publish_attempt_at', { precision: 3 }).nullable();
    });
  }
};

exports.down = async function down() {};
