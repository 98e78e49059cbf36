/**
 * Which lines of a run's output tail came from stderr, carried beside the
 * tail as line numbers counted from its end (1 = the last line), written
 * as ranges: "1-3,7". Counted from the end because every cut of the tail
 * (the runner's CRONQ_OUTPUT_TAIL_BYTES, the results consumer's bound, the
 * page's) removes lines from the front: the numbers stay right whatever
 * was cut. A tail's lines are its text split at "\n", without the empty
 * string after a final newline.
 */

/** Longest ranges text carried and stored. */
export const STDERR_LINES_MAX_CHARS = 4000;
const RANGES_RE = /^[1-9]\d{0,8}(-[1-9]\d{0,8})?(,[1-9]\d{0,8}(-[1-9]\d{0,8})?)*$/;

export function splitLines(text: string): string[] {
  if (text === '') return [];
  const lines = text.split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  return lines;
}

/** "1-3,7" from line numbers (any order); cut at a whole range to STDERR_LINES_MAX_CHARS, nearest the end first. */
export function encodeLineRanges(numbers: Iterable<number>): string {
  const sorted = [...new Set(numbers)]
    .filter((n) => Number.isSafeInteger(n) && n >= 1)
    .sort((a, b) => a - b);
  const parts: string[] = [];
  let length = 0;
  for (let i = 0; i < sorted.length;) {
    let j = i;
    while (j + 1 < sorted.length && sorted[j + 1] === sorted[j]! + 1) j++;
    const part = i === j ? `${sorted[i]}` : `${sorted[i]}-${sorted[j]}`;
    if (length + part.length + 1 > STDERR_LINES_MAX_CHARS) break;
    parts.push(part);
    length += part.length + 1;
    i = j + 1;
  }
  return parts.join(',');
}

/** Whether `text` is a well-formed ranges text (as a message field must be). */
export function isLineRanges(text: unknown): text is string {
  return typeof text === 'string' && text.length <= STDERR_LINES_MAX_CHARS && RANGES_RE.test(text);
}

/** A predicate "is line n (from the end) in the ranges"; malformed text marks nothing. */
export function lineRangesTest(text: string | null | undefined): (n: number) => boolean {
  if (!isLineRanges(text)) return () => false;
  const sorted = text
    .split(',')
    .map((p) => {
      const [a, b] = p.split('-');
      const lo = Number(a);
      const hi = Number(b ?? a);
      return [Math.min(lo, hi), Math.max(lo, hi)] as [number, number];
    })
    .sort((x, y) => x[0] - y[0]);
  // Merged into disjoint ranges, then a binary search: a page of 65,536 lines
  // and a thousand ranges costs a few comparisons a line, not a thousand.
  const ranges: Array<[number, number]> = [];
  for (const r of sorted) {
    const last = ranges[ranges.length - 1];
    if (last && r[0] <= last[1] + 1) last[1] = Math.max(last[1], r[1]);
    else ranges.push([r[0], r[1]]);
  }
  return (n) => {
    let lo = 0;
    let hi = ranges.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const [a, b] = ranges[mid]!;
      if (n < a) hi = mid - 1;
      else if (n > b) lo = mid + 1;
      else return true;
    }
    return false;
  };
}
