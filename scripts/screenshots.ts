/**
 * The README's tour of the admin, taken again from the code as it is:
 *
 *   npm run screenshots        (needs MariaDB on 127.0.0.1:3306 and /usr/bin/chromium)
 *
 * Creates a throwaway database, fills it with a few categories of jobs and
 * an afternoon of their runs (some failing, one timed out, one lost, one
 * running), serves the admin from this checkout in-process and saves
 * docs/screenshots/*.png with headless Chromium, at desktop width and at
 * 390 px. The database is dropped afterwards.
 */
import { launchChromium } from '../test/helpers/browser';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { createTestDatabase } from '../test/helpers/services';
import { startTestWeb } from '../test/helpers/web';
import { newRunId } from '../src/core/runs';
import { refreshJobStatus } from '../src/results/job-status';

const OUT = path.resolve(__dirname, '..', 'docs', 'screenshots');

const CATEGORIES: Record<string, Array<{ name: string; schedule: string; command: string }>> = {
  backups: [
    {
      name: 'mysql-dump',
      schedule: '0 3 * * *',
      command: '/opt/backup/mysql-dump.sh --all-databases',
    },
    {
      name: 'files-to-s3',
      schedule: '0 4 * * *',
      command: 'aws s3 sync /srv/files s3://acme-backups/files',
    },
    {
      name: 'verify-restore',
      schedule: 'R/2024-01-01T05:30:00Z/P1D',
      command: '/opt/backup/verify.sh',
    },
  ],
  billing: [
    {
      name: 'invoice-run',
      schedule: '*/15 * * * *',
      command: 'php /srv/billing/artisan invoices:run',
    },
    {
      name: 'dunning-mails',
      schedule: '0 9 * * 1-5',
      command: 'php /srv/billing/artisan dunning:send',
    },
    {
      name: 'fx-rates',
      schedule: 'R/2024-01-01T00:00:00Z/PT10M',
      command: 'curl -fsS https://fx.example/api > /srv/fx.json',
    },
  ],
  maintenance: [
    { name: 'rotate-logs', schedule: '0 * * * *', command: 'logrotate /etc/logrotate.conf' },
    {
      name: 'vacuum-analyze',
      schedule: '30 2 * * *',
      command: 'vacuumdb --all --analyze-in-stages',
    },
    {
      name: 'tmp-cleanup',
      schedule: 'R/2024-01-01T00:00:00Z/PT5M',
      command: 'find /tmp -mtime +2 -delete',
    },
    {
      name: 'reindex-search',
      schedule: '0 */6 * * *',
      command: '/opt/search/reindex --incremental',
    },
  ],
};

async function main(): Promise<void> {
  mkdirSync(OUT, { recursive: true });
  const tdb = await createTestDatabase();
  const web = await startTestWeb(tdb.db, tdb.url);
  const browser = await launchChromium();
  try {
    for (const [category, jobs] of Object.entries(CATEGORIES)) {
      const res = await fetch(`${web.url}/api/category/${category}`, {
        method: 'PUT',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ jobs }),
      });
      if (!res.ok) throw new Error(`PUT ${category}: ${res.status} ${await res.text()}`);
    }
    const ids = new Map(
      ((await tdb.db('jobs').select('id', 'name')) as Array<{ id: number; name: string }>).map(
        (j) => [j.name, j.id],
      ),
    );
    // An afternoon: 24 runs of each job, 10 minutes apart; a few fail.
    const now = Date.now();
    const outcome: Record<string, (i: number) => string> = {
      'invoice-run': (i) => (i >= 20 ? 'failed' : 'succeeded'),
      'files-to-s3': (i) => (i === 23 ? 'timed_out' : 'succeeded'),
      'reindex-search': (i) => (i === 23 ? 'lost' : 'succeeded'),
      'fx-rates': (i) => (i % 7 === 3 ? 'failed' : 'succeeded'),
    };
    const runIds: string[] = [];
    for (const [name, id] of ids) {
      if (name === 'dunning-mails') continue; // never run yet
      const rows = Array.from({ length: 24 }, (_, i) => {
        const at = new Date(now - (24 - i) * 600_000);
        const status = outcome[name]?.(i) ?? 'succeeded';
        const seconds = 3 + ((i * 7 + name.length * 3) % 40);
        const runId = newRunId();
        runIds.push(runId);
        return {
          run_id: runId,
          job_id: id,
          job_name: name,
          scheduled_for: at,
          status,
          host: `runner-${1 + (i % 3)}.acme.internal`,
          queued_at: at,
          started_at: at,
          finished_at: new Date(at.getTime() + seconds * 1000),
          run_time: status === 'lost' ? null : seconds,
          return_code: status === 'succeeded' ? 0 : status === 'failed' ? 2 : null,
          reason:
            status === 'failed'
              ? 'SQLSTATE[HY000] [2002] Connection refused'
              : status === 'lost'
                ? 'no heartbeat from runner-3.acme.internal for 120 s'
                : null,
          output_tail:
            status === 'failed'
              ? 'Preparing invoices for 1,204 accounts\nSQLSTATE[HY000] [2002] Connection refused\n'
              : `done in ${seconds} s\n`,
        };
      });
      await tdb.db('runs').insert(rows);
    }
    const running = newRunId();
    await tdb.db('runs').insert({
      run_id: running,
      job_id: ids.get('vacuum-analyze'),
      job_name: 'vacuum-analyze',
      scheduled_for: new Date(now - 83_000),
      status: 'running',
      host: 'runner-2.acme.internal',
      queued_at: new Date(now - 83_000),
      started_at: new Date(now - 83_000),
    });
    await refreshJobStatus(tdb.db, [...runIds, running]);
    await tdb
      .db('jobs')
      .where('name', 'tmp-cleanup')
      .update({
        paused_at: new Date(now - 3_600_000),
        paused_by: 'admin from 10.0.4.17',
      });

    const shots: Array<{ file: string; url: string; width: number; height: number }> = [
      { file: 'overview.png', url: '/?sort=failure', width: 1280, height: 760 },
      { file: 'job.png', url: `/job/${ids.get('fx-rates')}`, width: 1280, height: 1100 },
      { file: 'overview-phone.png', url: '/', width: 390, height: 844 },
    ];
    for (const s of shots) {
      const page = await browser.newPage({ viewport: { width: s.width, height: s.height } });
      await page.goto(`${web.url}${s.url}`);
      await page.screenshot({ path: path.join(OUT, s.file) });
      await page.close();
      process.stdout.write(`docs/screenshots/${s.file}\n`);
    }
  } finally {
    await browser.close();
    await web.stop();
    await tdb.drop();
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`${String(err instanceof Error ? err.stack : err)}\n`);
  process.exit(1);
});
