import test from 'ava';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildRing } from '../../../ring/build-ring.js';
import { localIps } from '../../../storage-node/local-ips.js';
import { localPortGroups, ServersPerPortError } from '../../../storage-node/servers-per-port.js';

type Devices = readonly (readonly [ip: string, port: number, device: string])[];

async function withRings(
  rings: { object?: Devices; container?: Devices; account?: Devices },
  run: (swiftDir: string) => void,
): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'nebula-spp-unit-'));
  try {
    for (const [kind, devices] of Object.entries(rings)) {
      buildRing(join(dir, `${kind}.builder`), {
        partPower: 2,
        replicas: 1,
        minPartHours: 0,
        devices: devices.map(([ip, port, device], index) => ({ zone: index + 1, ip, port, device, weight: 1 })),
      });
    }
    run(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

test('localIps: a given bind_ip is the only address; a wildcard means every interface, loopback included', (t) => {
  t.deepEqual([...localIps('10.0.0.1')], ['10.0.0.1']);
  t.deepEqual([...localIps('0:0:0:0:0:0:0:1')], ['::1']);
  t.true(localIps('0.0.0.0').has('127.0.0.1'));
  t.true(localIps('::').has('127.0.0.1'));
});

test('localPortGroups: this host devices by port, other hosts left out, database rings marked', async (t) => {
  await withRings(
    {
      object: [
        ['127.0.0.1', 6200, 'sdb'],
        ['127.0.0.1', 6201, 'sdc'],
        ['127.0.0.1', 6202, 'sdd'],
        ['10.9.9.9', 6200, 'sdb'],
      ],
      container: [
        ['127.0.0.1', 6200, 'sdb'],
        ['127.0.0.1', 6201, 'sdc'],
      ],
      account: [['127.0.0.1', 6201, 'sde']],
    },
    (swiftDir) => {
      t.deepEqual(localPortGroups(swiftDir, localIps('127.0.0.1')), [
        { port: 6200, devices: ['sdb'], ringIp: '127.0.0.1', holdsDatabases: true },
        { port: 6201, devices: ['sdc', 'sde'], ringIp: '127.0.0.1', holdsDatabases: true },
        { port: 6202, devices: ['sdd'], ringIp: '127.0.0.1', holdsDatabases: false },
      ]);
      t.deepEqual(localPortGroups(swiftDir, localIps('10.0.0.2')), [], 'no device of that host');
    },
  );
});

test('localPortGroups: a device on two ports of this host is refused (two processes would open it)', async (t) => {
  await withRings({ object: [['127.0.0.1', 6200, 'sdb']], container: [['127.0.0.1', 6201, 'sdb']] }, (swiftDir) => {
    const error = t.throws(() => localPortGroups(swiftDir, localIps('127.0.0.1')), {
      instanceOf: ServersPerPortError,
    });
    t.regex(error.message, /sdb is on port 6200 and on port 6201/);
  });
});

test('localPortGroups: missing rings are skipped', async (t) => {
  await withRings({}, (swiftDir) => t.deepEqual(localPortGroups(swiftDir, localIps('127.0.0.1')), []));
});
