import {
  closeSync,
  createWriteStream,
  fstatSync,
  openSync,
  renameSync,
  type WriteStream,
} from 'node:fs';
import { asError, errorMessage } from '../core/async';
import type { Logger } from '../core/logger';

/** Old job logs kept by rotation: `<file>.1` (newest) .. `<file>.3`. */
export const KEEP_ROTATED = 3;

/** One job log file as every run writing to it shares it. */
export interface JobLogHandle {
  /** Returns false when the file is behind (see WriteStream.write). */
  write(bytes: Buffer): boolean;
  /** Resolves when the file can take more (or is gone). */
  drained(): Promise<void>;
  /** This run is done with the file; the last one out closes it. */
  release(): Promise<void>;
}

/**
 * The open job log files of a runner, one stream per file, shared by the
 * runs of a job that overlap (each write is whole lines, so their lines
 * stay whole). A file that would pass `maxBytes` is rotated before the
 * write: `<file>.2` -> `.3`, `.1` -> `.2`, the file -> `.1`, and a new file
 * is started; the oldest falls off. Rotation is per runner: two runners
 * sharing a LOG_PATH each count only their own writes since they opened
 * the file.
 */
export class JobLogFiles {
  private readonly open = new Map<string, SharedLog>();

  constructor(
    private readonly maxBytes: number,
    private readonly logger: Logger,
  ) {}

  /** Share `file`; `onError` hears (once) that it cannot be written. */
  acquire(file: string, onError: (err: Error) => void): JobLogHandle {
    let log = this.open.get(file);
    if (!log) {
      log = new SharedLog(file, this.maxBytes, this.logger, () => {
        if (this.open.get(file) === log) this.open.delete(file);
      });
      this.open.set(file, log);
    }
    return log.attach(onError);
  }
}

class SharedLog {
  private stream: WriteStream | undefined;
  private closing: WriteStream | undefined;
  private size = 0;
  private refs = 0;
  private failed = false;
  private rotateBroken = false;
  private readonly watchers = new Set<(err: Error) => void>();

  constructor(
    private readonly file: string,
    private readonly maxBytes: number,
    private readonly logger: Logger,
    private readonly gone: () => void,
  ) {}

  attach(onError: (err: Error) => void): JobLogHandle {
    this.refs += 1;
    this.watchers.add(onError);
    let released = false;
    return {
      write: (bytes) => this.write(bytes),
      drained: () => this.drained(),
      release: () => {
        if (released) return Promise.resolve();
        released = true;
        return this.release(onError);
      },
    };
  }

  /**
   * Opened synchronously (one open and one fstat per file and rotation, not
   * per write): the size is known before the first write, and a rotation
   * can never race a pending open, whose bytes would land in the wrong file.
   */
  private openStream(): WriteStream | undefined {
    let fd: number | undefined;
    try {
      fd = openSync(this.file, 'a');
      this.size = fstatSync(fd).size;
    } catch (err) {
      if (fd !== undefined) closeSync(fd);
      this.fail(asError(err));
      return undefined;
    }
    const s = createWriteStream(this.file, { fd });
    // A rotated-away stream's late error is not this file's; the last one's, while closing, is.
    s.on('error', (err) => (s === this.stream || s === this.closing ? this.fail(err) : undefined));
    this.stream = s;
    return s;
  }

  private write(bytes: Buffer): boolean {
    if (this.failed) return true;
    let s = this.stream ?? this.openStream();
    if (
      s &&
      this.maxBytes > 0 &&
      this.size > 0 &&
      this.size + bytes.length > this.maxBytes &&
      !this.rotateBroken
    ) {
      s = this.rotate(s);
    }
    if (!s) return true;
    this.size += bytes.length;
    return s.write(bytes);
  }

  private rotate(old: WriteStream): WriteStream | undefined {
    // What the old stream still buffers goes to its descriptor, i.e. to the file that becomes `.1`.
    old.end();
    this.stream = undefined;
    try {
      // Synchronous, so no write can slip between the renames; three renames in one folder.
      for (let i = KEEP_ROTATED; i >= 1; i -= 1) {
        const from = i === 1 ? this.file : `${this.file}.${i - 1}`;
        try {
          renameSync(from, `${this.file}.${i}`);
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
        }
      }
    } catch (err) {
      this.rotateBroken = true;
      this.logger.warn(
        { file: this.file, err: errorMessage(err) },
        'cannot rotate the job log; it grows past CRONQ_JOB_LOG_MAX_BYTES',
      );
    }
    return this.openStream();
  }

  private fail(err: Error): void {
    if (this.failed) return;
    this.failed = true;
    this.stream?.destroy();
    this.stream = undefined;
    for (const w of this.watchers) w(err);
    // The next run tries the file afresh.
    this.gone();
  }

  private drained(): Promise<void> {
    const s = this.stream;
    if (!s || this.failed || !s.writableNeedDrain) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        s.off('drain', done);
        s.off('error', done);
        s.off('close', done);
        resolve();
      };
      s.once('drain', done);
      s.once('error', done);
      s.once('close', done);
    });
  }

  private async release(onError: (err: Error) => void): Promise<void> {
    this.refs -= 1;
    if (this.refs > 0) {
      this.watchers.delete(onError);
      return;
    }
    this.gone();
    const s = this.stream;
    this.stream = undefined;
    // The last run still hears of an open that fails only now (a short job can end first).
    this.closing = s;
    if (s && !s.destroyed)
      await new Promise<void>((resolve) => {
        s.end(() => resolve());
        s.once('error', () => resolve());
      });
    this.closing = undefined;
    this.watchers.clear();
  }
}
