import { createHash } from 'node:crypto';

/**
 * The job log's file name for a job name. SPEC.md names it `<name>.log`
 * with every run of non-word characters replaced by `-`, which maps many
 * names to one file ("a b", "a/b" and "a-b" all to `a-b.log`; every
 * non-ASCII name, "-" and ".." to `job.log`) and loses the log of a name
 * longer than the file system allows. So:
 *
 * - a name of ASCII words (letters, digits, `_`) separated by single spaces,
 *   at most PLAIN_MAX bytes, keeps SPEC.md's name: "say hello" ->
 *   `say-hello.log`. This is the common form of job names, and each such
 *   name has its own slug;
 * - any other name ("a-b", "a  b", "a/b", "日本語", "..", a long name) gets
 *   `<slug>--<hash>.log`: the slug cut to SLUG_MAX (`job` when nothing is
 *   left), `--`, and 16 hex digits of the SHA-256 of the exact name (its
 *   UTF-16 units, so even lone surrogates count). A plain name's file never
 *   contains `--`, so the two forms never meet, and two names share a file
 *   only if their hashes collide.
 *
 * Every file name is printable ASCII, at most 255 bytes with room for the
 * rotation suffix (`.log.3`), has no `/` or NUL, is never `.` or `..` and
 * never starts with `-` or `.`.
 */

/** Longest plain name kept as is, in bytes (255 less `.log` and a rotation suffix, with room to spare). */
const PLAIN_MAX = 200;
const SLUG_MAX = 160;
const HASH_HEX = 16;

const PLAIN_RE = /^[A-Za-z0-9_]+(?: [A-Za-z0-9_]+)*$/;

export function jobLogFileName(name: string): string {
  if (name.length <= PLAIN_MAX && PLAIN_RE.test(name)) return `${name.replace(/ /g, '-')}.log`;
  const slug =
    name
      .replace(/\W+/g, '-')
      .slice(0, SLUG_MAX)
      .replace(/^-+|-+$/g, '') || 'job';
  const hash = createHash('sha256').update(name, 'utf16le').digest('hex').slice(0, HASH_HEX);
  return `${slug}--${hash}.log`;
}
