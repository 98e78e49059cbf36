'use strict';
/**
 * Category and job names compare exactly (byte for byte, no padding), so
 * the rule is the same in cronq-validator, the dry run and the database.
 * Under the database's default utf8mb4_unicode_ci, "ß" = "ss", "ı" = "I",
 * "Backup" = "backup " = "backup", and PUT /api/category/Canary
 * silently replaced "canary". A case-insensitive column can never hold two
 * names that a binary one would merge, so this change cannot fail on
 * existing rows.
 *
 * MariaDB (10.2+) has utf8mb4_nopad_bin; MySQL 8 has utf8mb4_0900_bin (also
 * NO PAD). Names never end in spaces (the category rule refuses them), which
 * matters because CHAR(255) drops trailing spaces when read.
 */

async function exactCollation(knex) {
  for (const name of ['utf8mb4_nopad_bin', 'utf8mb4_0900_bin']) {
    const [rows] = await knex.raw('SHOW COLLATION WHERE Collation = ?', [name]);
    if (rows.length > 0) return name;
  }
  return 'utf8mb4_bin';
}

async function currentCollation(knex, table) {
  const [rows] = await knex.raw(
    'SELECT COLLATION_NAME AS c FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ? AND COLUMN_NAME = ?',
    [table, 'name'],
  );
  return rows[0] ? rows[0].c : null;
}

exports.up = async function up(knex) {
  const collation = await exactCollation(knex);
  for (const table of ['categories', 'jobs']) {
    if ((await currentCollation(knex, table)) === collation) continue;
    await knex.raw(
      `ALTER TABLE ?? MODIFY name CHAR(255) CHARACTER SET utf8mb4 COLLATE ${collation} NULL`,
      [table],
    );
  }
};

// Additive in spirit: going back would merge names that now differ, so nothing is undone.
exports.down = async function down() {};
