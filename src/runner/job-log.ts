import { constants } from 'node:fs';
import { access, mkdir } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { errorMessage, within } from '../core/async';
import type { Logger } from '../core/logger';
import type { JobLogFiles, JobLogHandle } from './job-log-files';

/**
 * The folder job logs go to: LOG_PATH when it can be created and written,
 * otherwise `<tmp>/cronq` with one warning (the original required
 * /var/log/cronq to exist; a runner started by an ordinary user should still
 * run its jobs).
 */
export async function resolveLogDir(wanted: string, logger: Logger): Promise<string> {
  try {
    // Bounded: Node's recursive mkdir never settles for some paths (e.g. under /proc).
    const made = await within(mkdir(wanted, { recursive: true }), 2000);
    if (!made.done) throw new Error(`creating ${wanted} took too long`);
    await access(wanted, constants.W_OK);
    return wanted;
  } catch (err) {
    const fallback = path.join(os.tmpdir(), 'cronq');
    await mkdir(fallback, { recursive: true });
    logger.warn(
      { wanted, fallback, err: errorMessage(err) },
      'LOG_PATH is not writable; writing job logs to the temp folder',
    );
    return fallback;
  }
}

export type StreamName = 'out' | 'err';

/** A line is cut here when no newline comes, so one endless line cannot take all memory. */
const MAX_LINE_BYTES = 64 * 1024;
const NL = Buffer.from('\n');

/**
 * Appends one run's output to its job log, line by line, each line prefixed
 * with the time it arrived, the run id and the stream (`out`/`err`), so runs
 * of the same job that overlap stay apart in one file. Bytes are written as
 * they came (binary and invalid UTF-8 included); only the echo to the
 * runner's own log is decoded. Writes go through the file's one buffered
 * stream (job-log-files.ts: shared by overlapping runs of the job, rotated
 * by size), one write per chunk of whole lines, never a synchronous write
 * per line.
 */
export class JobLogWriter {
  /** Taken at the first write: a run that prints nothing costs no file open. */
  private handle: JobLogHandle | undefined;
  private readonly partial: Record<StreamName, Buffer[]> = { out: [], err: [] };
  private readonly partialBytes: Record<StreamName, number> = { out: 0, err: 0 };
  private failed = false;
  /** Why the file could not be written, when it could not: the result says so. */
  failure: string | undefined;
  lines = 0;

  constructor(
    readonly file: string,
    private readonly runId: string,
    private readonly logger: Logger,
    private readonly echo: ((stream: StreamName, line: string) => void) | undefined,
    private readonly files: JobLogFiles,
  ) {}

  private open(): JobLogHandle | undefined {
    if (this.handle || this.failed) return this.handle;
    this.handle = this.files.acquire(this.file, (err) => this.onError(err));
    return this.handle;
  }

  private onError(err: Error): void {
    if (this.failed) return;
    this.failed = true;
    this.failure = err.message;
    // The run goes on: its output still reaches the result's tail.
    this.logger.warn(
      { file: this.file, err: err.message },
      'cannot write the job log; output of this run is not logged to file',
    );
  }

  /** Write a chunk; returns false when the file is behind, so the caller can pause the child's pipes. */
  write(name: StreamName, chunk: Buffer): boolean {
    const prefix = Buffer.from(`${new Date().toISOString()} ${this.runId} ${name} `);
    const parts: Buffer[] = [];
    let start = 0;
    for (let nl = chunk.indexOf(10, start); nl !== -1; nl = chunk.indexOf(10, start)) {
      const piece = chunk.subarray(start, nl);
      if (this.partialBytes[name] > 0) {
        this.partial[name].push(piece);
        this.emitLine(name, prefix, Buffer.concat(this.partial[name]), parts);
        this.partial[name] = [];
        this.partialBytes[name] = 0;
      } else {
        this.emitLine(name, prefix, piece, parts);
      }
      start = nl + 1;
    }
    if (start < chunk.length) {
      const rest = chunk.subarray(start);
      this.partial[name].push(Buffer.from(rest));
      this.partialBytes[name] += rest.length;
      if (this.partialBytes[name] >= MAX_LINE_BYTES) this.flushPartial(name, prefix, parts);
    }
    return this.writeParts(parts);
  }

  private emitLine(name: StreamName, prefix: Buffer, line: Buffer, parts: Buffer[]): void {
    this.lines += 1;
    parts.push(prefix, line, NL);
    this.echo?.(name, line.toString('utf8'));
  }

  private flushPartial(name: StreamName, prefix: Buffer, parts: Buffer[]): void {
    if (this.partialBytes[name] === 0) return;
    this.emitLine(name, prefix, Buffer.concat(this.partial[name]), parts);
    this.partial[name] = [];
    this.partialBytes[name] = 0;
  }

  private writeParts(parts: Buffer[]): boolean {
    if (parts.length === 0 || this.failed) return true;
    const handle = this.open();
    if (!handle || this.failed) return true;
    return handle.write(Buffer.concat(parts));
  }

  /** Resolves when the file is writable again. */
  drained(): Promise<void> {
    if (!this.handle || this.failed) return Promise.resolve();
    return this.handle.drained();
  }

  private ending: Promise<void> | undefined;

  /** Write any unterminated last lines and close the file. Idempotent. */
  end(): Promise<void> {
    return (this.ending ??= this.close());
  }

  private async close(): Promise<void> {
    const prefix = Buffer.from(`${new Date().toISOString()} ${this.runId} `);
    const parts: Buffer[] = [];
    this.flushPartial('out', Buffer.concat([prefix, Buffer.from('out ')]), parts);
    this.flushPartial('err', Buffer.concat([prefix, Buffer.from('err ')]), parts);
    this.writeParts(parts);
    await this.handle?.release();
  }
}
