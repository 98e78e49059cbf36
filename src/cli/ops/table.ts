/**
 * Plain-text tables for a terminal: every line fits `width` columns
 * (80 by default, the narrowest terminal the commands promise to fit);
 * columns marked `shrink` give up width first, their cells cut with "…".
 * Widths count code points (names are NFC; wide CJK characters count one).
 */

export interface Column {
  header: string;
  /** May be cut below its natural width; the others keep theirs while any shrinkable one can give. */
  shrink?: boolean;
  /** Never cut below this (default: the header's width, at least 4). */
  min?: number;
  align?: 'left' | 'right';
}

const GAP = '  ';

/** Control characters of server text shown as "?": a table cell must not move the cursor. */
export function cellText(v: unknown): string {
  if (v === null || v === undefined || v === '') return '-';
  return String(v).replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g, '?');
}

export function cut(s: string, width: number): string {
  const cps = [...s];
  if (cps.length <= width) return s;
  if (width <= 0) return '';
  return `${cps.slice(0, width - 1).join('')}…`;
}

function len(s: string): number {
  return [...s].length;
}

/** The width each column gets so that the line fits `width`, shrinkable columns first. */
export function columnWidths(columns: Column[], rows: string[][], width: number): number[] {
  const widths = columns.map((c, i) =>
    Math.max(len(c.header), ...rows.map((r) => len(r[i] ?? ''))),
  );
  const mins = columns.map((c, i) => Math.min(widths[i]!, c.min ?? Math.max(4, len(c.header))));
  const total = () => widths.reduce((a, b) => a + b, 0) + GAP.length * (columns.length - 1);
  const order = (shrinkable: boolean) =>
    columns.flatMap((c, i) => (!!c.shrink === shrinkable ? [i] : []));
  // Take one column at a time from the widest that can still give, shrinkable ones first.
  for (const group of [order(true), order(false)]) {
    while (total() > width) {
      const give = group.filter((i) => widths[i]! > mins[i]!);
      if (give.length === 0) break;
      const widest = give.reduce((a, b) => (widths[b]! > widths[a]! ? b : a));
      widths[widest]! -= 1;
    }
  }
  // Past every minimum (absurdly many columns): cut the last columns to fit anyway.
  for (let i = columns.length - 1; i >= 0 && total() > width; i--)
    widths[i] = Math.max(0, widths[i]! - (total() - width));
  return widths;
}

export function formatTable(columns: Column[], rows: unknown[][], width = 80): string {
  const text = rows.map((r) => columns.map((_, i) => cellText(r[i])));
  const widths = columnWidths(columns, text, width);
  const line = (cells: string[]) =>
    cells
      .map((c, i) => {
        const s = cut(c, widths[i]!);
        const pad = ' '.repeat(Math.max(0, widths[i]! - len(s)));
        return columns[i]!.align === 'right' ? pad + s : i === cells.length - 1 ? s : s + pad;
      })
      .join(GAP)
      .trimEnd();
  return [line(columns.map((c) => c.header)), ...text.map(line)].map((l) => `${l}\n`).join('');
}

/** The table's width: the terminal's when stdout is one and wider than 80, else 80. */
export function terminalWidth(): number {
  const cols = process.stdout.isTTY ? process.stdout.columns : undefined;
  return cols !== undefined && cols > 80 ? Math.min(cols, 500) : 80;
}

/** "2024-05-01T13:00:05.120Z" -> "2024-05-01 13:00:05" (UTC); null -> "-". */
export function shortTime(iso: string | null | undefined): string {
  if (!iso) return '-';
  const m = /^(\d{4}-\d{2}-\d{2})T(\d{2}:\d{2}:\d{2})/.exec(iso);
  return m ? `${m[1]} ${m[2]}` : cellText(iso);
}
