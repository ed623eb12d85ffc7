import test from 'ava';
import { ConfigSection, parseIni, resolveIni } from '../../../common/config.js';

const SAMPLE = `
[DEFAULT]
bind_ip = 127.0.0.1
bind_port = 6200
# a comment
mount_check = false

[app:object-server]
use = egg:swift#object
workers: 2
pipeline = a
   b c
`;

test('parses sections, inherits DEFAULT, joins continuation lines', (t) => {
  const ini = resolveIni(parseIni(SAMPLE), {});
  const section = ConfigSection.of(ini, 'app:object-server');
  t.is(section.string('bind_ip', ''), '127.0.0.1');
  t.is(section.int('workers', 1), 2);
  t.false(section.bool('mount_check', true));
  t.deepEqual(section.list('pipeline'), ['a', 'b', 'c']);
});

test('environment overrides win', (t) => {
  const ini = resolveIni(parseIni(SAMPLE), { NEBULA_DEFAULT__BIND_PORT: '0', NEBULA_APP_OBJECT_SERVER__WORKERS: '4' });
  t.is(ConfigSection.of(ini, 'app:object-server').int('bind_port', 1), 0);
  t.is(ConfigSection.of(ini, 'app:object-server').int('workers', 1), 4);
  t.is(
    ConfigSection.of(ini, 'object-replicator', { NEBULA_OBJECT_REPLICATOR__INTERVAL: '10' }).int('interval', 30),
    10,
  );
});

test('bad integers are refused with the option named', (t) => {
  const ini = resolveIni(parseIni('[x]\nworkers = many\n'), {});
  t.throws(() => ConfigSection.of(ini, 'x').int('workers', 1), { message: /\[x\] workers must be an integer/ });
});
