/**
 * The backend client's timeouts on a busy host: a stall of the proxy's event loop longer than
 * conn_timeout must not fail a storage node that accepted the connection in time (timers run
 * before I/O in each turn of the loop). The storage node stand-in runs in a worker thread, so it
 * answers while the main thread is stalled.
 */
import { Worker } from 'node:worker_threads';
import test from 'ava';
import { BackendClient } from '../../proxy/backend.js';

const SERVER_SOURCE = `
const { createServer } = require('node:http');
const { parentPort } = require('node:worker_threads');
const server = createServer((req, res) => {
  req.resume();
  req.on('end', () => res.end('ok'));
});
server.listen(0, '127.0.0.1', () => parentPort.postMessage(server.address().port));
parentPort.on('message', () => server.close(() => process.exit(0)));
`;

function stallEventLoop(ms: number): void {
  const until = Date.now() + ms;
  // Bounded busy wait: the point is to keep the event loop from turning.
  while (Date.now() < until) {
    /* stalled */
  }
}

test('a stall longer than conn_timeout does not fail a backend that connected in time', async (t) => {
  const worker = new Worker(SERVER_SOURCE, { eval: true });
  const client = new BackendClient();
  try {
    const port = await new Promise<number>((resolve) => worker.once('message', resolve));
    const pending = client.request({
      node: { ip: '127.0.0.1', port, device: 'd1' },
      method: 'GET',
      path: '/1/a/c/o',
      headers: {},
      connTimeoutMs: 50,
      nodeTimeoutMs: 5000,
    });
    await Promise.resolve(); // the socket is assigned and the connect started (next ticks); no I/O polled yet
    stallEventLoop(300);
    const response = await pending;
    t.is(response.statusCode, 200);
    response.resume();
  } finally {
    client.close();
    worker.postMessage('stop');
    await new Promise((resolve) => worker.once('exit', resolve));
  }
});
