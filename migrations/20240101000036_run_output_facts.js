'use strict';
/**
 * Two facts about a run's output the run page shows: how many bytes it
 * wrote in all (output_tail keeps only the last CRONQ_OUTPUT_TAIL_BYTES),
 * and which lines of the tail came from stderr, as ranges of line numbers
 * counted from the end (src/core/output-lines.ts). NULL for runs written
 * before this, and for results from runners that do not send them.
 */
const added = {
  output_total: (t) => t.bigInteger('output_total').nullable(),
  stderr_lines: (t) => t.string('stderr_lines', 4000).nullable(),
};

exports.up = async function up(knex) {
  for (const [name, add] of Object.entries(added)) {
    if (!(await knex.schema.hasColumn('runs', name))) {
      await knex.schema.alterTable('runs', (t) => add(t));
    }
  }
};

exports.down = async function down() {};
