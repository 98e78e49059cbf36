import type { Knex } from '../core/db';
import type { WriteLimits } from './store';

/**
 * Statement and field sizes that keep every write under the server's
 * max_allowed_packet. A statement over it is not refused politely: the
 * server drops the connection, which looks like an outage and was retried
 * forever. Multi-row statements stay under 4 MiB (or the packet less a
 * margin, if smaller); a single row always fits, because `output` is kept
 * to at most half the packet (escaping may double every byte), less room
 * for the other fields (at most ~13 KB) and the statement's text.
 */

/** MariaDB's default; used when the server cannot be asked at start. */
export const DEFAULT_MAX_ALLOWED_PACKET = 16 * 1024 * 1024;
/** MEDIUMTEXT, runs.output_tail. */
const OUTPUT_COLUMN_BYTES = 16 * 1024 * 1024 - 1;
const ROW_MARGIN = 32 * 1024;

export interface ConsumerLimits {
  write: WriteLimits;
  /** Longest output a result keeps (its tail), in UTF-8 bytes. */
  maxOutputBytes: number;
}

export function limitsFor(maxAllowedPacket: number, outputTailBytes: number): ConsumerLimits {
  const packet = Math.max(maxAllowedPacket, 2 * ROW_MARGIN);
  return {
    write: { maxStatementBytes: Math.min(4 * 1024 * 1024, packet - ROW_MARGIN) },
    maxOutputBytes: Math.max(
      0,
      Math.min(outputTailBytes, OUTPUT_COLUMN_BYTES, Math.floor((packet - ROW_MARGIN) / 2)),
    ),
  };
}

export async function readMaxAllowedPacket(db: Knex): Promise<number> {
  const [rows] = (await db.raw('SELECT @@max_allowed_packet AS p')) as [Array<{ p: unknown }>];
  const p = Number(rows[0]?.p);
  if (!Number.isFinite(p) || p <= 0) throw new Error('@@max_allowed_packet is not a number');
  return p;
}
