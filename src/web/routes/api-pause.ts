import { Router } from 'express';
import { NotFoundError, ValidationError } from '../../core/errors';
import { isoUtc } from '../format';
import type { WebDeps } from '../app';
import { jobIdParam } from '../params';
import { pausedBy, setCategoryPaused, setJobPaused } from '../pause';
import * as q from '../queries';

/**
 * POST /api/jobs/<id>/pause|resume and /api/category/<name>/pause|resume
 * (docs/policies.md). Idempotent: pausing a paused job keeps when and by
 * whom it was paused.
 */
export function apiPauseRouter(deps: WebDeps): Router {
  const { db, logger } = deps;
  const r = Router();

  for (const action of ['pause', 'resume'] as const) {
    r.post(`/jobs/:id/${action}`, async (req, res) => {
      const id = jobIdParam(req);
      const state = await setJobPaused(db, id, action === 'pause' ? pausedBy(req, 'api') : null);
      if (!state) throw new NotFoundError(`no job with id ${id}`);
      logger.info({ job_id: id, by: state.paused_by }, `job ${action}d (API)`);
      res.json({
        status: 'success',
        data: {
          job: {
            id,
            paused: state.paused_at !== null,
            paused_at: isoUtc(state.paused_at),
            paused_by: state.paused_by,
          },
        },
      });
    });

    r.post(`/category/:name/${action}`, async (req, res) => {
      const name = String(req.params.name);
      if (name === '' || [...name].length > 255)
        throw new ValidationError('category: the name in the URL must be 1-255 characters', [
          { path: 'category', message: 'must be 1-255 characters' },
        ]);
      const cat = await q.categoryByName(db, name);
      if (!cat) throw new NotFoundError(`no category named "${name}"`);
      const n = await setCategoryPaused(
        db,
        cat.id,
        action === 'pause' ? pausedBy(req, 'api') : null,
      );
      logger.info({ category: name, changed: n.changed }, `category ${action}d (API)`);
      res.json({
        status: 'success',
        data: {
          category: {
            id: cat.id,
            name: cat.name,
            paused: action === 'pause',
            jobs: n.jobs,
            changed: n.changed,
          },
        },
      });
    });
  }
  return r;
}
