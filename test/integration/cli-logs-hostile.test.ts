/**
 * `cronq logs --follow` against a server that misbehaves (a real HTTP
 * server started here, the real command spawned): a stream in \r\n line
 * ends is read, and an output event that is not JSON ends the command with
 * one line instead of being skipped (a stream of only such events used to
 * keep it waiting for ever, silent).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { runCommand } from '../helpers/processes';

const RUN = 'ab'.repeat(16);
let server: http.Server;
let url: string;
let live = '';
let served = false;

before(async () => {
  server = http.createServer((req, res) => {
    if (req.url === `/api/runs/${RUN}`) {
      res.writeHead(200, { 'content-type': 'application/json' });
      // Running until its stream was served; stored as ended after.
      const status = served ? 'succeeded' : 'running';
      res.end(
        JSON.stringify({
          data: { run: { id: RUN, status, output_tail: 'hi\n', output_cut: false } },
        }),
      );
    } else if (req.url === `/api/runs/${RUN}/live`) {
      served = true;
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write(live);
      if (live.includes('"status"')) res.end();
    } else res.writeHead(404).end();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
after(async () => {
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
});

const follow = () => {
  served = false;
  return runCommand('cronq', { args: ['logs', RUN, '--follow', '--url', url], timeoutMs: 30_000 });
};

test('a stream with \\r\\n line ends is followed to its end', async () => {
  live =
    'event: output\r\ndata: {"text":"hello\\n"}\r\n\r\nevent: end\r\ndata: {"status":"succeeded"}\r\n\r\n';
  const r = await follow();
  assert.equal(r.stdout, 'hello\n');
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stderr, `run ${RUN} succeeded\n`);
});

test('an output event that is not JSON ends the command with one line', async () => {
  live = 'event: output\ndata: {not json\n\n';
  const r = await follow();
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, /the live stream sent an output event that is not JSON/);
});
