import type { Knex } from './db';

/**
 * The `settings` table (migrations/20240101000038_settings.js): facts one
 * daemon records for another to show, by name. Several writers of one name
 * (several results consumers): the last one wins.
 */

export interface StoredSetting {
  value: string;
  updatedAt: Date;
}

/** Longest value stored: what one daemon records is small; a bigger one is a bug, not data. */
export const MAX_SETTING_BYTES = 16_384;

export async function readSetting(db: Knex, name: string): Promise<StoredSetting | undefined> {
  const row = (await db('settings').select('value', 'updated_at').where('name', name).first()) as
    { value: string; updated_at: Date } | undefined;
  return row ? { value: row.value, updatedAt: row.updated_at } : undefined;
}

/**
 * Store `value` under `name` in one statement; `updated_at` moves only when
 * the value changes (MariaDB assigns left to right, so the IF still sees the
 * old value). True when the row was written or changed.
 */
export async function writeSetting(db: Knex, name: string, value: string): Promise<boolean> {
  if (Buffer.byteLength(value) > MAX_SETTING_BYTES)
    throw new RangeError(`setting ${name} is longer than ${MAX_SETTING_BYTES} bytes`);
  const [res] = (await db.raw(
    `INSERT INTO settings (name, value, updated_at) VALUES (?, ?, UTC_TIMESTAMP(3))
     ON DUPLICATE KEY UPDATE updated_at = IF(CAST(value AS BINARY) = CAST(VALUES(value) AS BINARY), updated_at, VALUES(updated_at)),
                             value = VALUES(value)`,
    [name, value],
  )) as [{ affectedRows: number }];
  return res.affectedRows > 0;
}
