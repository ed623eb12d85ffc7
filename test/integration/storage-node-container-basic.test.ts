import test from 'ava';
import { startDbServersApp } from '../unit/storage-node/helpers/db-servers-app.js';

test('container and account servers answer over HTTP through a tiny router', async (t) => {
  const app = await startDbServersApp();
  try {
    const put = await fetch(`${app.url}/sda/1/AUTH_a`, {
      method: 'PUT',
      headers: { 'X-Timestamp': '1700000000.00000' },
    });
    t.is(put.status, 201);
    const cput = await fetch(`${app.url}/sda/2/AUTH_a/c`, {
      method: 'PUT',
      headers: {
        'X-Timestamp': '1700000001.00000',
        'X-Account-Host': `127.0.0.1:${app.port}`,
        'X-Account-Device': 'sda',
        'X-Account-Partition': '1',
        'X-Container-Meta-Color': 'blue',
      },
    });
    t.is(cput.status, 201);
    const row = await fetch(`${app.url}/sda/2/AUTH_a/c/o1`, {
      method: 'PUT',
      headers: {
        'X-Backend-Server-Type': 'container',
        'X-Timestamp': '1700000002.00000',
        'X-Size': '5',
        'X-Content-Type': 'text/plain',
        'X-Etag': 'd41d8cd98f00b204e9800998ecf8427e',
      },
    });
    t.is(row.status, 201);
    const head = await fetch(`${app.url}/sda/2/AUTH_a/c`, { method: 'HEAD' });
    t.is(head.status, 204);
    t.is(head.headers.get('x-container-object-count'), '1');
    t.is(head.headers.get('x-container-bytes-used'), '5');
    t.is(head.headers.get('x-container-meta-color'), 'blue');
    const list = await fetch(`${app.url}/sda/2/AUTH_a/c?format=json`);
    t.is(list.status, 200);
    t.deepEqual(await list.json(), [
      {
        bytes: 5,
        hash: 'd41d8cd98f00b204e9800998ecf8427e',
        name: 'o1',
        content_type: 'text/plain',
        last_modified: '2023-11-14T22:13:22.000000',
      },
    ]);
    // The debounced report reaches the account.
    let count = '';
    for (let attempt = 0; attempt < 50 && count !== '1'; attempt += 1) {
      await new Promise((resolve) => setTimeout(resolve, 20));
      const ahead = await fetch(`${app.url}/sda/1/AUTH_a`, { method: 'HEAD' });
      count = ahead.headers.get('x-account-object-count') ?? '';
    }
    t.is(count, '1');
    const alist = await fetch(`${app.url}/sda/1/AUTH_a`);
    t.is(await alist.text(), 'c\n');
  } finally {
    await app.close();
  }
});
