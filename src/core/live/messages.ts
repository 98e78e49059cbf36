import { MessageFormatError } from '../errors';
import { RUN_ID_RE } from '../messages';

/**
 * One message on `cronq.output`: a piece of a run's output as text, or the
 * end of the run's stream. Bounded on both sides: a runner never sends a
 * text over OUTPUT_CHUNK_MAX_BYTES (plus its marker), a web drops a body
 * over OUTPUT_BODY_MAX_BYTES.
 */
export const OUTPUT_CHUNK_MAX_BYTES = 16 * 1024;
export const OUTPUT_BODY_MAX_BYTES = 64 * 1024;

export type OutputMessage =
  | { run_id: string; seq: number; text: string }
  | { run_id: string; seq: number; end: true; status: string };

export function encodeOutput(m: OutputMessage): Buffer {
  return Buffer.from(JSON.stringify(m), 'utf8');
}

export function parseOutput(body: Buffer): OutputMessage {
  if (body.length > OUTPUT_BODY_MAX_BYTES)
    throw new MessageFormatError(`output message over ${OUTPUT_BODY_MAX_BYTES} bytes`);
  let m: unknown;
  try {
    m = JSON.parse(body.toString('utf8'));
  } catch {
    throw new MessageFormatError('output message is not JSON');
  }
  if (typeof m !== 'object' || m === null || Array.isArray(m))
    throw new MessageFormatError('output message is not a JSON object');
  const o = m as Record<string, unknown>;
  if (typeof o.run_id !== 'string' || !RUN_ID_RE.test(o.run_id))
    throw new MessageFormatError('output message run_id must be 32 lowercase hex');
  if (typeof o.seq !== 'number' || !Number.isSafeInteger(o.seq) || o.seq < 0)
    throw new MessageFormatError('output message seq must be a whole number');
  if (o.end === true) {
    if (typeof o.status !== 'string' || o.status.length > 40)
      throw new MessageFormatError('output end message needs a status');
    return { run_id: o.run_id, seq: o.seq, end: true, status: o.status };
  }
  if (typeof o.text !== 'string')
    throw new MessageFormatError('output message text must be a string');
  return { run_id: o.run_id, seq: o.seq, text: o.text };
}

/** "[… 1.2 MB not shown …]": what a thinned stream shows where it left output out. */
export function notShownMarker(bytes: number): string {
  const size =
    bytes >= 1024 * 1024
      ? `${(bytes / (1024 * 1024)).toFixed(1)} MB`
      : bytes >= 1024
        ? `${(bytes / 1024).toFixed(1)} KB`
        : `${bytes} bytes`;
  return `[… ${size} not shown …]\n`;
}
