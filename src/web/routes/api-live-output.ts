import { Router, type Response } from 'express';
import { NotFoundError } from '../../core/errors';
import { notShownMarker, type OutputMessage } from '../../core/live/messages';
import { FINAL_RUN_STATUSES } from '../../core/runs';
import type { WebDeps } from '../app';
import { HttpError } from '../errors';
import { MAX_LIVE_VIEWERS, type LiveViewer } from '../live/output-hub';
import { runIdParam } from '../params';

/** Output a viewer that does not read may leave unsent before more is dropped (marked). */
const VIEWER_BUFFER_MAX_BYTES = 256 * 1024;
/** How often the run's end is looked for in the ledger (a runner that died sends no end). */
const END_POLL_MS = 1000;
/** After the ledger says the run ended, its last chunks may still be on the way. */
const END_GRACE_MS = 1000;
const KEEPALIVE_MS = 15_000;
const LIVE_MAX_PER_CLIENT = 10;

const isFinal = (s: string) =>
  (FINAL_RUN_STATUSES as readonly string[]).includes(s) || s === 'killed';

/**
 * GET /api/runs/<run_id>/live: the run's output as it is written, as
 * Server-Sent Events (`output` events with `{"text"}`, one `end` event with
 * `{"status"}`), used by the run page and `cronq logs --follow`. It starts
 * when the viewer connects (earlier output is in the job log and, at the
 * end, the stored tail). 404 unknown run; 503 "broker unavailable" while
 * the broker is away (nothing is kept for later); a run already ended
 * answers its `end` event at once.
 */
export function liveOutputRouter(deps: WebDeps): Router {
  const { db } = deps;
  const r = Router();
  const perClient = new Map<string, number>();

  r.get('/runs/:run_id/live', async (req, res) => {
    const runId = runIdParam(req);
    const status = await runStatus(db, runId);
    if (status === undefined) throw new NotFoundError(`no run with id ${runId}`);
    if (isFinal(status)) {
      startEvents(res);
      sendEvent(res, 'end', { status });
      res.end();
      return;
    }
    const hub = deps.live;
    if (!hub?.available) throw new HttpError(503, 'broker unavailable: live output needs RabbitMQ');
    if (hub.viewerCount >= MAX_LIVE_VIEWERS)
      throw new HttpError(503, 'too many live viewers on this web process; try again later');
    const client = req.socket.remoteAddress ?? 'unknown';
    if ((perClient.get(client) ?? 0) >= LIVE_MAX_PER_CLIENT)
      throw new HttpError(429, `at most ${LIVE_MAX_PER_CLIENT} live views per address`);

    let ended = false;
    let dropped = 0;
    const timers: NodeJS.Timeout[] = [];
    const finish = (endStatus?: string) => {
      if (ended) return;
      ended = true;
      for (const t of timers) clearInterval(t);
      hub.remove(viewer);
      const n = (perClient.get(client) ?? 1) - 1;
      if (n <= 0) perClient.delete(client);
      else perClient.set(client, n);
      if (endStatus !== undefined && !res.writableEnded)
        sendEvent(res, 'end', { status: endStatus });
      res.end();
    };
    const viewer: LiveViewer = {
      runId,
      lost() {
        if (ended) return;
        sendEvent(res, 'unavailable', { message: 'broker unavailable' });
        finish();
      },
      deliver(m: OutputMessage) {
        if (ended) return;
        if ('end' in m) return finish(m.status);
        // A viewer that does not read loses output (marked), never the web's memory.
        if (res.writableLength > VIEWER_BUFFER_MAX_BYTES) {
          dropped += Buffer.byteLength(m.text);
          return;
        }
        const text = dropped > 0 ? notShownMarker(dropped) + m.text : m.text;
        dropped = 0;
        sendEvent(res, 'output', { text });
      },
    };
    perClient.set(client, (perClient.get(client) ?? 0) + 1);
    startEvents(res);
    res.on('close', () => finish());
    try {
      await hub.add(viewer);
    } catch {
      sendEvent(res, 'unavailable', { message: 'broker unavailable' });
      return finish();
    }
    if (ended) {
      hub.remove(viewer); // the viewer left while it was being added
      return;
    }
    sendEvent(res, 'ready', { run_id: runId, status });
    timers.push(
      setInterval(() => res.write(': keepalive\n\n'), KEEPALIVE_MS),
      setInterval(() => {
        void runStatus(db, runId)
          .then((s) => {
            if (s !== undefined && isFinal(s)) setTimeout(() => finish(s), END_GRACE_MS).unref();
          })
          .catch(() => undefined);
      }, END_POLL_MS),
    );
  });
  return r;
}

async function runStatus(db: WebDeps['db'], runId: string): Promise<string | undefined> {
  const row = (await db('runs').select('status').where('run_id', runId).first()) as
    { status: string } | undefined;
  return row?.status;
}

function startEvents(res: Response): void {
  res.status(200).set({
    'Content-Type': 'text/event-stream; charset=utf-8',
    'Cache-Control': 'no-store',
    'X-Accel-Buffering': 'no',
  });
  res.flushHeaders();
  res.write('retry: 3000\n\n');
}

/** One event; JSON data is one line, so no field can break the framing. */
function sendEvent(res: Response, event: string, data: unknown): void {
  res.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
}
