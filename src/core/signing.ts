import { createHash, createHmac, timingSafeEqual } from 'node:crypto';

/**
 * Message signing (docs/security.md). With CRONQ_MESSAGE_KEY set, the
 * injector signs job messages and runners sign results; runners and the
 * results consumer refuse what is unsigned or badly signed.
 *
 * The signature travels in AMQP headers so the JSON body is byte for byte
 * what it was: the original's Python runners ignore headers and keep
 * working. It is HMAC-SHA256 over
 *
 *     "cronq-v1:<kind>\n<signed-at>\n<run id>\n" + body bytes
 *
 * where kind is `job` or `result` (so one kind can never pass for the
 * other), signed-at is the Unix time in milliseconds at publish, and the
 * run id is the body's own (lowercase hex, dashes removed), so a signature
 * made for one run cannot be put on another.
 */

export const SIGNATURE_HEADER = 'x-cronq-signature';
export const SIGNED_AT_HEADER = 'x-cronq-signed-at';
export const KEY_ID_HEADER = 'x-cronq-key-id';

export type MessageKind = 'job' | 'result' | 'presence';

/** A bounded set, so a refusal can be logged and counted without echoing the sender's input. */
export type RefusalReason =
  | 'unsigned'
  | 'malformed signature headers'
  | 'unknown key'
  | 'bad signature'
  | 'signed too long ago'
  | 'signed in the future';

/**
 * The reasons that come after the signature was found good: the message is
 * genuine, only out of its time window, so its run is real and deserves a
 * record of why it never ran.
 */
export function isGenuineButUntimely(reason: RefusalReason): boolean {
  return reason === 'signed too long ago' || reason === 'signed in the future';
}

export interface MessageKey {
  /** Names the key in headers and logs; derived from the secret, reveals nothing usable. */
  id: string;
  secret: Buffer;
}

export interface VerifyOptions {
  /** Refuse when signed longer ago than this; undefined = no age limit. */
  maxAgeMs?: number;
  /** Refuse when signed further ahead of this host's clock than this. */
  maxFutureMs: number;
}

/** At least this many characters per key: 32 hex characters are 128 bits. */
export const MIN_KEY_LENGTH = 32;

/** The part of a message the signer and the verifier read. */
export type Headers = Readonly<Record<string, unknown>> | undefined;

export function keyId(secret: string | Buffer): string {
  return createHash('sha256')
    .update('cronq message key id\n')
    .update(secret)
    .digest('hex')
    .slice(0, 12);
}

export function messageKey(secret: string): MessageKey {
  return { id: keyId(secret), secret: Buffer.from(secret, 'utf8') };
}

function mac(
  key: MessageKey,
  kind: MessageKind,
  signedAt: string,
  runId: string,
  body: Buffer,
): Buffer {
  return createHmac('sha256', key.secret)
    .update(`cronq-v1:${kind}\n${signedAt}\n${runId}\n`)
    .update(body)
    .digest();
}

const SIGNED_AT_RE = /^\d{1,15}$/;
const SIGNATURE_RE = /^[0-9a-f]{64}$/;
const KEY_ID_RE = /^[0-9a-f]{12}$/;

function headerString(headers: Headers, name: string): string | undefined {
  const v = headers?.[name];
  if (typeof v === 'string') return v;
  // amqplib hands a header sent as a byte string back as a Buffer.
  if (Buffer.isBuffer(v) && v.length <= 128) return v.toString('latin1');
  return undefined;
}

/**
 * Signs with the first key and accepts any of them, so keys can be rotated
 * without a flag day: add the new key second everywhere, then move it first,
 * then drop the old one.
 */
export class MessageSigner {
  private readonly keys: readonly MessageKey[];

  constructor(
    keys: readonly MessageKey[],
    private readonly now: () => number = Date.now,
  ) {
    if (keys.length === 0) throw new Error('MessageSigner needs at least one key');
    this.keys = keys;
  }

  /** Headers to publish `body` with. Call at publish time: the age limit counts from here. */
  sign(kind: MessageKind, runId: string, body: Buffer): Record<string, string> {
    const key = this.keys[0]!;
    const signedAt = String(this.now());
    return {
      [SIGNATURE_HEADER]: mac(key, kind, signedAt, runId, body).toString('hex'),
      [SIGNED_AT_HEADER]: signedAt,
      [KEY_ID_HEADER]: key.id,
    };
  }

  /** Why the message must be refused, or undefined when it is signed by one of our keys in time. */
  verify(
    kind: MessageKind,
    runId: string,
    body: Buffer,
    headers: Headers,
    opts: VerifyOptions,
  ): RefusalReason | undefined {
    const signature = headerString(headers, SIGNATURE_HEADER);
    const signedAt = headerString(headers, SIGNED_AT_HEADER);
    const id = headerString(headers, KEY_ID_HEADER);
    if (signature === undefined && signedAt === undefined) return 'unsigned';
    if (
      signature === undefined ||
      signedAt === undefined ||
      !SIGNATURE_RE.test(signature) ||
      !SIGNED_AT_RE.test(signedAt) ||
      (id !== undefined && !KEY_ID_RE.test(id))
    )
      return 'malformed signature headers';
    // A sender that names its key is checked against that key only; one that does not, against each.
    const candidates = id === undefined ? this.keys : this.keys.filter((k) => k.id === id);
    if (candidates.length === 0) return 'unknown key';
    const given = Buffer.from(signature, 'hex');
    // Check the signature before the time, so a forger learns nothing about our clock or window.
    if (!candidates.some((k) => timingSafeEqual(mac(k, kind, signedAt, runId, body), given)))
      return 'bad signature';
    const age = this.now() - Number(signedAt);
    if (opts.maxAgeMs !== undefined && age > opts.maxAgeMs) return 'signed too long ago';
    if (-age > opts.maxFutureMs) return 'signed in the future';
    return undefined;
  }
}

/** Parse CRONQ_MESSAGE_KEY: one key, or several separated by commas or whitespace (first signs). */
export function parseMessageKeys(raw: string): string[] {
  return raw
    .split(/[\s,]+/)
    .map((k) => k.trim())
    .filter((k) => k !== '');
}

/** The signer for CRONQ_MESSAGE_KEY's keys, or undefined when signing is off. */
export function createMessageSigner(keys: readonly string[]): MessageSigner | undefined {
  return keys.length === 0 ? undefined : new MessageSigner(keys.map(messageKey));
}
