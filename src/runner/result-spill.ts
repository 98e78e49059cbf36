/**
 * The spill files of the result outbox: results a runner could not get
 * confirmed before it stopped, one JSON line each, for the next runner
 * started with the same folder to publish.
 *
 * A file name carries the pid that owns it, so a later runner can tell an
 * orphan from a live runner's: `results-<pid>-<rand>.jsonl` as written,
 * `adopting-<pid>-results-...` while a runner publishes another's file (it
 * is deleted only once every result in it is confirmed, so a crash while
 * adopting loses nothing).
 */
import { randomBytes } from 'node:crypto';
import { mkdir, readdir, readFile, rename, unlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from '../core/logger';
import type { ResultMessage } from '../core/messages';

/** One result as a spill file keeps it. */
export interface SpillRecord {
  messageId: string;
  runId: string;
  type: ResultMessage['type'];
  /** The result message, as published (UTF-8 JSON). */
  body: string;
}

const SPILL_RE = /^(?:adopting-(\d+)-)?results-(\d+)-[0-9a-f]+\.jsonl$/;

function ownerPid(name: string): number | undefined {
  const m = SPILL_RE.exec(name);
  if (!m) return undefined;
  return Number(m[1] ?? m[2]);
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Write `records` to a new spill file of this process in `dir`; returns its path. */
export async function writeSpill(dir: string, records: SpillRecord[]): Promise<string> {
  const file = path.join(dir, `results-${process.pid}-${randomBytes(4).toString('hex')}.jsonl`);
  await mkdir(dir, { recursive: true });
  await writeFile(file, records.map((r) => JSON.stringify(r)).join('\n') + '\n');
  return file;
}

/** A spill file taken over by this process: publish its records, then `removeSpill(file)`. */
export interface AdoptedSpill {
  /** Its name as found (for the log). */
  name: string;
  /** Its path now (renamed to `adopting-<our pid>-...`). */
  file: string;
  records: SpillRecord[];
}

/**
 * Take over the spill files in `dir` whose owner is no longer alive (or is
 * this process), oldest name first. Each is renamed before it is read, so
 * two runners starting at once cannot both adopt it.
 */
export async function adoptSpills(dir: string, logger: Logger): Promise<AdoptedSpill[]> {
  await mkdir(dir, { recursive: true });
  const names = (await readdir(dir)).filter((n) => SPILL_RE.test(n)).sort();
  const adopted: AdoptedSpill[] = [];
  for (const name of names) {
    const pid = ownerPid(name)!;
    if (pid !== process.pid && isAlive(pid)) continue;
    const mine = path.join(dir, `adopting-${process.pid}-${name.replace(/^(adopting-\d+-)+/, '')}`);
    try {
      await rename(path.join(dir, name), mine);
    } catch {
      continue;
    }
    const lines = (await readFile(mine, 'utf8')).split('\n').filter((l) => l.trim() !== '');
    const records: SpillRecord[] = [];
    for (const line of lines) {
      const rec = parseRecord(line);
      if (rec) records.push(rec);
      else logger.warn({ file: name }, 'skipping an unreadable line of a result spill file');
    }
    adopted.push({ name, file: mine, records });
  }
  return adopted;
}

function parseRecord(line: string): SpillRecord | undefined {
  try {
    const rec = JSON.parse(line) as Partial<SpillRecord> | null;
    if (typeof rec?.body !== 'string' || typeof rec.messageId !== 'string') return undefined;
    return rec as SpillRecord;
  } catch {
    return undefined;
  }
}

/** Delete a spill file (all its results are confirmed, or saved in a newer file). */
export async function removeSpill(file: string): Promise<void> {
  await unlink(file).catch(() => undefined);
}
