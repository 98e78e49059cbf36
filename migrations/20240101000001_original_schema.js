'use strict';
/**
 * The three tables of the original Python cronq (0.27), as it created them.
 * An existing cronq database is adopted in place: a table that is already
 * there is left with its rows, and only missing columns are added.
 */

async function addMissingColumns(knex, table, columns) {
  for (const [name, add] of Object.entries(columns)) {
    if (!(await knex.schema.hasColumn(table, name))) {
      await knex.schema.alterTable(table, (t) => add(t));
    }
  }
}

const categoryColumns = {
  name: (t) => t.specificType('name', 'CHAR(255)').nullable(),
};

const jobColumns = {
  name: (t) => t.specificType('name', 'CHAR(255)').nullable(),
  interval: (t) => t.dateTime('interval').nullable(),
  next_run: (t) => t.dateTime('next_run').nullable(),
  last_run_start: (t) => t.dateTime('last_run_start').nullable(),
  last_run_stop: (t) => t.dateTime('last_run_stop').nullable(),
  last_run_status: (t) => t.specificType('last_run_status', 'CHAR(32)').nullable(),
  current_status: (t) => t.specificType('current_status', 'CHAR(32)').nullable(),
  routing_key: (t) => t.specificType('routing_key', 'CHAR(32)').nullable().defaultTo('default'),
  command: (t) => t.text('command').nullable(),
  run_now: (t) => t.integer('run_now').nullable(),
  locked_by: (t) => t.specificType('locked_by', 'CHAR(64)').nullable(),
  category_id: (t) => t.integer('category_id').nullable(),
};

const eventColumns = {
  job_id: (t) => t.integer('job_id').nullable(),
  datetime: (t) => t.dateTime('datetime').nullable(),
  run_id: (t) => t.specificType('run_id', 'CHAR(32)').nullable(),
  type: (t) => t.specificType('type', 'CHAR(32)').nullable(),
  host: (t) => t.specificType('host', 'CHAR(255)').nullable(),
  return_code: (t) => t.integer('return_code').nullable(),
};

exports.up = async function up(knex) {
  if (await knex.schema.hasTable('categories')) {
    await addMissingColumns(knex, 'categories', categoryColumns);
  } else {
    await knex.schema.createTable('categories', (t) => {
      t.specificType('id', 'INT NOT NULL AUTO_INCREMENT PRIMARY KEY');
      categoryColumns.name(t);
      t.unique(['name'], { indexName: 'name' });
    });
  }

  if (await knex.schema.hasTable('jobs')) {
    await addMissingColumns(knex, 'jobs', jobColumns);
  } else {
    await knex.schema.createTable('jobs', (t) => {
      t.specificType('id', 'INT NOT NULL AUTO_INCREMENT PRIMARY KEY');
      for (const add of Object.values(jobColumns)) add(t);
      t.foreign('category_id').references('categories.id');
      t.unique(['category_id', 'name'], { indexName: 'unique_idx_category_id_name' });
    });
  }

  if (await knex.schema.hasTable('events')) {
    await addMissingColumns(knex, 'events', eventColumns);
  } else {
    await knex.schema.createTable('events', (t) => {
      t.specificType('id', 'INT NOT NULL AUTO_INCREMENT PRIMARY KEY');
      for (const add of Object.values(eventColumns)) add(t);
      // Removing a job from its category removes its events with it, as the
      // original's cascade did; the runs table keeps the run history.
      t.foreign('job_id').references('jobs.id').onDelete('CASCADE');
    });
  }
};

// Additive only: a rollback never drops an operator's original tables.
exports.down = async function down() {};
