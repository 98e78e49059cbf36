/**
 * Split `items`, in order, into chunks of at most `maxCount` items whose
 * sizes add up to at most `maxSize`: what one statement or one row may
 * carry. An item larger than `maxSize` alone is a chunk of its own (the
 * caller decides what to do with it).
 */
export function chunkBy<T>(
  items: Iterable<T>,
  maxCount: number,
  maxSize: number,
  sizeOf: (item: T) => number,
): T[][] {
  const chunks: T[][] = [];
  let chunk: T[] = [];
  let size = 0;
  for (const item of items) {
    const s = sizeOf(item);
    if (chunk.length >= maxCount || (chunk.length > 0 && size + s > maxSize)) {
      chunks.push(chunk);
      chunk = [];
      size = 0;
    }
    chunk.push(item);
    size += s;
  }
  if (chunk.length > 0) chunks.push(chunk);
  return chunks;
}
