import { errorMessage } from '../../core/async';
import { loadConfig } from '../../core/config';
import { CronqError, UsageError } from '../../core/errors';

/** The most a CLI reads of one answer: a web admin's answers are far smaller. */
const MAX_ANSWER_BYTES = 16 * 1024 * 1024;
const REQUEST_TIMEOUT_MS = 30_000;

/** An answer of the web admin that is not 2xx: its status and its one-line message. */
export class ApiError extends CronqError {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

export interface ClientOptions {
  url?: string;
}

/**
 * The operator's commands talk to a running web admin over its JSON API,
 * with the same rules as `cronq apply`: --url, else CRONQ_API_URL, else
 * http://127.0.0.1:$PORT; CRONQ_API_TOKEN sent as a bearer token when set.
 */
export class ApiClient {
  readonly base: URL;
  constructor(
    base: string,
    private readonly token: string | undefined,
  ) {
    try {
      this.base = new URL(base.endsWith('/') ? base : `${base}/`);
    } catch {
      throw new UsageError(`--url must be an http(s) URL, got "${base.slice(0, 200)}"`);
    }
    if (this.base.protocol !== 'http:' && this.base.protocol !== 'https:')
      throw new UsageError(`--url must be an http(s) URL, got "${base.slice(0, 200)}"`);
  }

  static fromOptions(opts: ClientOptions, env: NodeJS.ProcessEnv = process.env): ApiClient {
    const config = loadConfig(env);
    const base = opts.url ?? env.CRONQ_API_URL ?? `http://127.0.0.1:${config.web.port}`;
    return new ApiClient(base, config.web.apiToken);
  }

  /** `path` relative to the base, e.g. `api/jobs?page=1`. */
  url(path: string): URL {
    return new URL(path, this.base);
  }

  headers(accept = 'application/json'): Record<string, string> {
    return {
      accept,
      ...(this.token ? { authorization: `Bearer ${this.token}` } : {}),
    };
  }

  get<T>(path: string): Promise<T> {
    return this.request<T>('GET', path);
  }

  post<T>(path: string): Promise<T> {
    return this.request<T>('POST', path);
  }

  /** Open a request whose body the caller reads (a stream); non-2xx answers throw ApiError. */
  async open(path: string, accept: string, signal?: AbortSignal): Promise<Response> {
    const res = await this.fetch('GET', path, accept, signal);
    if (!res.ok) throw await apiErrorOf(res);
    return res;
  }

  private async request<T>(method: string, path: string): Promise<T> {
    const res = await this.fetch(
      method,
      path,
      'application/json',
      AbortSignal.timeout(REQUEST_TIMEOUT_MS),
    );
    if (!res.ok) throw await apiErrorOf(res);
    const text = await readBounded(res);
    try {
      return JSON.parse(text) as T;
    } catch {
      throw new CronqError(
        `${this.base.origin} answered ${res.status} with something that is not JSON (is --url the web admin?)`,
      );
    }
  }

  private async fetch(
    method: string,
    path: string,
    accept: string,
    signal?: AbortSignal,
  ): Promise<Response> {
    try {
      // Writes go as JSON: without a token the web refuses any other POST (CSRF rule, 415).
      const write = method !== 'GET';
      return await fetch(this.url(path), {
        method,
        headers: {
          ...this.headers(accept),
          ...(write ? { 'content-type': 'application/json' } : {}),
        },
        body: write ? '{}' : undefined,
        redirect: 'error',
        signal,
      });
    } catch (err) {
      const cause = (err as { cause?: { code?: string; message?: string } }).cause;
      throw new CronqError(
        `cannot reach ${this.base.origin}: ${cause?.code ?? cause?.message ?? errorMessage(err)} (is cronq-web running? set --url or CRONQ_API_URL)`,
      );
    }
  }
}

async function readBounded(res: Response): Promise<string> {
  if (!res.body) return '';
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of res.body as AsyncIterable<Uint8Array>) {
    size += chunk.byteLength;
    if (size > MAX_ANSWER_BYTES)
      throw new CronqError(`the answer is larger than ${MAX_ANSWER_BYTES} bytes; not read`);
    chunks.push(Buffer.from(chunk));
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** A non-2xx answer as one line: the API's `error.message`, else the start of the body. */
async function apiErrorOf(res: Response): Promise<ApiError> {
  let text = '';
  try {
    text = await readBounded(res);
  } catch {
    // too large: the status alone is reported
  }
  let message: string | undefined;
  try {
    message = (JSON.parse(text) as { error?: { message?: unknown } }).error?.message as
      string | undefined;
  } catch {
    // not JSON
  }
  if (typeof message !== 'string') message = text.trim().slice(0, 200) || res.statusText;
  if (res.status === 401) message = `${message} (set CRONQ_API_TOKEN to the web admin's token)`;
  return new ApiError(res.status, oneLine(message));
}

/** Server text printed on a terminal: one line, no control characters, bounded. */
export function oneLine(s: string, max = 300): string {
  const flat = s.replace(/[\u0000-\u001f\u007f-\u009f]+/g, ' ').trim();
  return flat.length > max ? `${flat.slice(0, max - 1)}…` : flat;
}
