/**
 * What a stored string may be, by the column it goes into, checked before
 * anything touches the database (a too-long value there is a 500 halfway
 * through a transaction, not a clear 400).
 *
 * - CHAR(n)/VARCHAR(n) count characters (code points): the schema's
 *   maxLength says so already.
 * - TEXT counts BYTES of UTF-8: 65,535. '€'.repeat(65535) is 65,535
 *   characters but 196,605 bytes.
 */

/** Bytes a TEXT column holds. */
export const TEXT_COLUMN_BYTES = 65_535;

/** Characters a person cannot see, or that reorder what they see. */
export const INVISIBLE_CHARS = /[\p{Cc}\p{Cf}\p{Zl}\p{Zp}]/u;
export const INVISIBLE_CHARS_GLOBAL = /[\p{Cc}\p{Cf}\p{Zl}\p{Zp}]/gu;

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** The column size of each job text field, in bytes, where it is counted in bytes. */
const FIELD_BYTES: Record<string, number | undefined> = {
  command: TEXT_COLUMN_BYTES,
  description: TEXT_COLUMN_BYTES,
};

export function utf8Bytes(s: string): number {
  return Buffer.byteLength(s, 'utf8');
}

/** Null when `value` fits its column; otherwise why not. */
export function fieldBytesProblem(field: string, value: unknown): string | null {
  if (typeof value !== 'string') return null;
  if (LONE_SURROGATE.test(value)) return 'is not valid Unicode (it has a lone surrogate)';
  const max = FIELD_BYTES[field];
  if (max !== undefined) {
    const n = utf8Bytes(value);
    if (n > max) return `is ${n} bytes of UTF-8; the column holds at most ${max}`;
  }
  return null;
}

function codePoint(c: string): string {
  return `U+${c.codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0')}`;
}

/**
 * A category or job name must read as what it is: no leading or trailing
 * white space (CHAR columns drop trailing spaces, and "backup " would look
 * like "backup"), no invisible or direction-changing characters, and
 * Unicode NFC (so "é" is one name however it was typed).
 */
export function nameProblem(name: string): string | null {
  if (LONE_SURROGATE.test(name)) return 'is not valid Unicode (it has a lone surrogate)';
  const hidden = INVISIBLE_CHARS.exec(name);
  if (hidden)
    return `must not contain invisible or control characters (found ${codePoint(hidden[0])})`;
  if (/^\s|\s$/u.test(name)) return 'must not begin or end with white space';
  if (name.normalize('NFC') !== name)
    return 'must be in Unicode normal form C (compose accents with their letters)';
  return null;
}

/** `text` with every invisible character written as ⟨U+XXXX⟩; `keep` characters stay as they are. */
export function showInvisible(text: string, keep: ReadonlySet<string> = NO_KEEP): string {
  return text.replace(INVISIBLE_CHARS_GLOBAL, (c) => (keep.has(c) ? c : `⟨${codePoint(c)}⟩`));
}
const NO_KEEP: ReadonlySet<string> = new Set();
