/**
 * The web admin started in-process on port 0 against a test database, and a
 * dump of the tables a request may change (to prove a refused one changed nothing).
 */
import { loadConfig } from '../../src/core/config';
import type { Knex } from '../../src/core/db';
import { silentLogger } from '../../src/core/logger';
import { WebServer } from '../../src/web/server';
import type { WebDeps } from '../../src/web/app';

export interface TestWeb {
  url: string;
  server: WebServer;
  stop(): Promise<void>;
}

export async function startTestWeb(
  db: Knex,
  databaseUrl: string,
  env: Record<string, string> = {},
  extra: Partial<Pick<WebDeps, 'broker'>> = {},
): Promise<TestWeb> {
  const config = loadConfig({ DATABASE_URL: databaseUrl, ...env });
  const server = new WebServer(
    { db, config, logger: silentLogger(), ...extra },
    { port: 0, host: '127.0.0.1' },
    1000,
  );
  await server.start();
  return { url: `http://127.0.0.1:${server.address()!.port}`, server, stop: () => server.stop() };
}

/** Every row of categories, jobs, runs and events, in a stable order. */
export async function dumpTables(db: Knex): Promise<string> {
  const out: Record<string, unknown> = {};
  for (const t of ['categories', 'jobs', 'runs', 'events'])
    out[t] = await db(t)
      .select('*')
      .orderBy(t === 'runs' ? 'run_id' : 'id');
  return JSON.stringify(out);
}
