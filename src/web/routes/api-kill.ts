import { Router } from 'express';
import { NotFoundError } from '../../core/errors';
import type { WebDeps } from '../app';
import { HttpError } from '../errors';
import { killRun } from '../kill';
import { runIdParam } from '../params';
import { pausedBy } from '../pause';

/**
 * POST /api/runs/<run_id>/kill (docs/runner.md, "Killing a run"): 200 with
 * status `killed` for a run not started yet, 202 with status `running`
 * and `kill_requested` for a running one (the runner reports it `killed`
 * once its process group is gone); 404 unknown, 409 final (with its
 * status), 503 "broker unavailable". Same token rules as every API write.
 */
export function apiKillRouter(deps: WebDeps): Router {
  const { db, logger } = deps;
  const r = Router();
  r.post('/runs/:run_id/kill', async (req, res) => {
    const id = runIdParam(req);
    const out = await killRun(db, deps.control, { runId: id, by: pausedBy(req, 'api') });
    if (out.kind === 'not_found') throw new NotFoundError(`no run with id ${id}`);
    if (out.kind === 'final')
      throw new HttpError(409, `run ${id} has already ended: ${out.status}`, {
        status: out.status,
      });
    logger.info({ run_id: id, job_id: out.jobId, by: out.killedBy }, 'kill requested (API)');
    res.status(out.kind === 'killed' ? 200 : 202).json({
      status: 'success',
      data: {
        run: {
          run_id: id,
          job_id: out.jobId,
          status: out.kind === 'killed' ? 'killed' : 'running',
          kill_requested: true,
          killed_by: out.killedBy,
        },
      },
    });
  });
  return r;
}
