import test from 'ava';
import { once } from 'node:events';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { type AddressInfo } from 'node:net';
import { createClient, type StoreClient } from '../../../bench/clients.js';
import { PayloadPool } from '../../../bench/payload.js';

/**
 * A tempauth-like server that closes each connection right after its first answer without saying
 * so (no `Connection: close`): the client's next request on that socket is lost, as when a server
 * resumed from SIGSTOP closes every idle keep-alive socket at once.
 */
async function startForgetfulServer(): Promise<{ port: number; heads: () => number; close: () => void }> {
  let heads = 0;
  const server = createServer((request: IncomingMessage, response: ServerResponse) => {
    if (request.url === '/auth/v1.0') {
      response.writeHead(200, { 'x-auth-token': 't', 'x-storage-url': `http://127.0.0.1:${port}/v1/AUTH_test` });
    } else {
      heads += 1;
      response.writeHead(200, { 'content-length': '0', etag: 'd41d8cd98f00b204e9800998ecf8427e' }); // the empty body's MD5
    }
    response.end(() => setImmediate(() => request.socket.destroy()));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as AddressInfo).port;
  return { port, heads: () => heads, close: () => server.close() };
}

function clientOf(port: number, socketsMax: number): StoreClient {
  return createClient(
    { api: 'swift', authUrl: `http://127.0.0.1:${port}/auth/v1.0`, user: 'test:tester', key: 'testing' },
    new PayloadPool(1024),
    { socketsMax, idleTimeoutMs: 5000, deadlineMs: 10_000 },
  );
}

const head = (client: StoreClient, name: string): Promise<number> =>
  client.head({ container: 'c', name, size: 0, variant: 0 });

test('a request lost on a kept-alive socket the server just closed is sent again, not counted', async (t) => {
  const server = await startForgetfulServer();
  const client = clientOf(server.port, 1);
  try {
    await client.connect();
    for (let i = 0; i < 5; i += 1) await head(client, `o${i}`);
    t.is(server.heads(), 5);
  } finally {
    client.close();
    server.close();
  }
});

test('the second try takes a new connection, not another stale one from the pool', async (t) => {
  const server = await startForgetfulServer();
  const client = clientOf(server.port, 4);
  try {
    await client.connect();
    // Four sockets in the pool, each closed by the server after its answer.
    await Promise.all([0, 1, 2, 3].map((i) => head(client, `a${i}`)));
    for (let i = 0; i < 3; i += 1) await head(client, `b${i}`);
    t.is(server.heads(), 7);
  } finally {
    client.close();
    server.close();
  }
});
