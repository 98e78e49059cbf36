import type { Readable, Writable } from 'node:stream';

const COLOURS = [36, 35, 33, 32, 34, 31]; // cyan, magenta, yellow, green, blue, red

/** `[injector] ` padded to the longest role name, coloured on a terminal. */
export function labelFor(role: string, index: number, width: number, colour: boolean): string {
  const text = `[${role}]`.padEnd(width + 2);
  return colour ? `\u001b[${COLOURS[index % COLOURS.length]}m${text}\u001b[0m ` : `${text} `;
}

/**
 * Copy `input` to `output` line by line with `label` in front of each
 * line, so the logs of four processes sharing one terminal stay readable.
 * A partial last line is flushed when the input ends.
 */
export function prefixLines(input: Readable, output: Writable, label: string): Promise<void> {
  let partial = '';
  input.setEncoding('utf8');
  input.on('data', (chunk: string) => {
    const parts = (partial + chunk).split('\n');
    partial = parts.pop() ?? '';
    if (parts.length > 0) output.write(parts.map((l) => `${label}${l}\n`).join(''));
  });
  return new Promise((resolve) => {
    input.on('close', () => {
      if (partial) output.write(`${label}${partial}\n`);
      partial = '';
      resolve();
    });
  });
}
