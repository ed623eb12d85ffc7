import test from 'ava';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EXIT_ERROR, EXIT_SUCCESS, EXIT_WARNING, buildRing, runCli } from '../../../ring/cli.js';
import { Ring } from '../../../ring/ring.js';
import { RingBuilder } from '../../../ring/builder.js';

function tempFolder(t: { teardown: (fn: () => void) => void }): string {
  const folder = mkdtempSync(join(tmpdir(), 'nebula-ring-cli-'));
  t.teardown(() => rmSync(folder, { recursive: true, force: true }));
  return folder;
}

function run(args: string[]): { status: number; out: string[]; err: string[] } {
  const out: string[] = [];
  const err: string[] = [];
  const status = runCli(args, { out: (line) => out.push(line), err: (line) => err.push(line) });
  return { status, out, err };
}

test('create, add, rebalance, show: Swift words and exit codes', (t) => {
  const builder = join(tempFolder(t), 'object.builder');
  t.is(run([builder, 'create', '8', '3', '1']).status, EXIT_SUCCESS);
  const added = run([
    builder,
    'add',
    'r1z1-127.0.0.1:6210/sdb1',
    '100',
    'r1z2-127.0.0.1:6220/sdb2',
    '100',
    'r1z3-127.0.0.1:6230R10.0.0.3:7230/sdb3_fast',
    '100',
  ]);
  t.is(added.status, EXIT_SUCCESS);
  t.is(added.out[2], 'Device d2r1z3-127.0.0.1:6230R10.0.0.3:7230/sdb3_"fast" with 100.0 weight got id 2');
  const long = run([
    builder,
    'add',
    '--region',
    '1',
    '--zone',
    '4',
    '--ip',
    '127.0.0.1',
    '--port',
    '6240',
    '--device',
    'sdb4',
    '--weight',
    '50',
  ]);
  t.is(long.status, EXIT_SUCCESS);
  t.is(run([builder, 'add', 'r1z4-127.0.0.1:6240/sdb4', '50']).status, EXIT_ERROR, 'duplicate device');

  const rebalanced = run([builder, 'rebalance', '--seed', '3']);
  t.is(rebalanced.status, EXIT_SUCCESS, rebalanced.out.join('\n'));
  t.regex(
    rebalanced.out[0] ?? '',
    /^Reassigned 768 \(300\.00%\) partitions\. Balance is now \d+\.\d\d\. {2}Dispersion is now 0\.00$/,
  );
  t.true(existsSync(join(builder, '..', 'object.ring.gz')));

  const shown = run([builder]);
  t.is(shown.status, EXIT_SUCCESS);
  t.regex(
    shown.out[1] ?? '',
    /^256 partitions, 3\.000000 replicas, 1 regions, 4 zones, 4 devices, \d+\.\d\d balance, 0\.00 dispersion$/,
  );
  t.true(shown.out.some((line) => line.includes('is up-to-date')));
  t.true(
    shown.out.some((line) => /^\s+2\s+1\s+3\s+127\.0\.0\.1:6230\s+10\.0\.0\.3:7230\s+sdb3\s+100\.00\s+\d+/.test(line)),
  );

  const again = run([builder, 'rebalance']);
  t.is(again.status, EXIT_WARNING);
  t.is(again.out[0], 'No partitions could be reassigned.');
  t.is(run([builder, 'validate']).status, EXIT_SUCCESS);
});

test('remove and set_weight by search value; several matches need --yes', (t) => {
  const builder = join(tempFolder(t), 'object.builder');
  run([builder, 'create', '6', '3', '0']);
  run([
    builder,
    'add',
    'r1z1-10.0.0.1:6200/sda',
    '100',
    'r1z1-10.0.0.1:6200/sdb',
    '100',
    'r1z2-10.0.0.2:6200/sda',
    '100',
  ]);
  run([
    builder,
    'add',
    'r1z3-10.0.0.3:6200/sda',
    '100',
    'r1z4-10.0.0.4:6200/sda',
    '100',
    'r1z5-10.0.0.5:6200/sda',
    '100',
  ]);
  t.is(run([builder, 'rebalance']).status, EXIT_SUCCESS);
  const ambiguous = run([builder, 'set_weight', 'z1', '50']);
  t.is(ambiguous.status, EXIT_ERROR);
  t.regex(ambiguous.err.join('\n'), /matched 2 devices/);
  const weighted = run([builder, 'set_weight', 'z1', '50', '--yes']);
  t.is(weighted.status, EXIT_SUCCESS);
  t.is(weighted.out[0], 'd0r1z1-10.0.0.1:6200R10.0.0.1:6200/sda_"" weight set to 50.0');
  const removed = run([builder, 'remove', 'd4']);
  t.is(removed.status, EXIT_SUCCESS);
  t.regex(removed.out[0] ?? '', /marked for removal and will be removed next rebalance\.$/);
  t.is(run([builder, 'remove', '10.9.9.9']).status, EXIT_ERROR);
  t.not(run([builder, 'rebalance']).status, EXIT_ERROR);
  const loaded = RingBuilder.load(builder);
  t.is(loaded.device(4), undefined);
  t.is(loaded.device(0)?.weight, 50);
});

test('bad arguments exit 2 with a message', (t) => {
  const folder = tempFolder(t);
  const builder = join(folder, 'object.builder');
  const tooBig = run([builder, 'create', '30', '3', '1']);
  t.is(tooBig.status, EXIT_ERROR);
  t.regex(tooBig.err[0] ?? '', /part_power must be an integer in 0\.\.24/);
  t.is(run([join(folder, 'missing.builder')]).status, EXIT_ERROR);
  run([builder, 'create', '6', '3', '1']);
  t.is(run([builder, 'add', 'z1-10.0.0.1/sda', '1']).status, EXIT_ERROR);
  t.is(run([builder, 'add', 'r1z1-10.0.0.1:6200/sda']).status, EXIT_ERROR);
  t.is(run([builder, 'frobnicate']).status, EXIT_ERROR);
  run([builder, 'add', 'r1z1-10.0.0.1:6200/sda', '0', 'r1z2-10.0.0.2:6200/sda', '0', 'r1z3-10.0.0.3:6200/sda', '0']);
  const zero = run([builder, 'rebalance']);
  t.is(zero.status, EXIT_ERROR);
  t.regex(zero.err[0] ?? '', /no device has a weight above 0/);
});

test('buildRing: builds once, then only when the declared devices change', (t) => {
  const folder = tempFolder(t);
  const devices = [1, 2, 3, 4].map((zone) => ({
    region: 1,
    zone,
    ip: '127.0.0.1',
    port: 6200 + zone * 10,
    device: `sdb${zone}`,
    weight: 100,
  }));
  const first = buildRing(join(folder, 'object.builder'), { partPower: 8, replicas: 3, minPartHours: 1, devices });
  t.is(first.ringPath, join(folder, 'object.ring.gz'));
  t.truthy(first.rebalance);
  const ring = Ring.load(first.ringPath, { prefix: '', suffix: 'x' }, { reloadIntervalMs: 0 });
  t.is(ring.devices.length, 4);
  const second = buildRing(join(folder, 'object.builder'), { partPower: 8, replicas: 3, minPartHours: 1, devices });
  t.is(second.rebalance, undefined);
  const third = buildRing(join(folder, 'object.builder'), {
    partPower: 8,
    replicas: 3,
    minPartHours: 1,
    devices: [...devices.slice(0, 3), { ...devices[3]!, weight: 50 }],
  });
  t.truthy(third.rebalance);
  t.throws(() => buildRing(join(folder, 'object.builder'), { partPower: 9, replicas: 3, minPartHours: 1, devices }), {
    message: /remove it to rebuild/,
  });
});
