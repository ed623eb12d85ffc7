/**
 * swift-ring-builder's device strings, parsed the same way:
 * - add values: `r<region>z<zone>-<ip>:<port>[R<replication ip>:<port>]/<device>[_<meta>]`
 *   (the `r<region>` part optional, region 1), IPv6 in brackets;
 * - search values: `d<id>r<region>z<zone>-<ip>:<port>R<ip>:<port>/<device>_<meta>`, every part
 *   optional (`d3`, `z2`, `127.0.0.1`, `:6200`, `/sdb1`, `_ssd`);
 * - the long options `--region --zone --ip --port --replication-ip --replication-port --device
 *   --meta --weight` (and `--id` for searches).
 * Malformed input throws RingBuilderError with the offending text.
 */
import { RingBuilderError } from './errors.js';
import type { AddDeviceInput, DeviceSearch } from './builder.js';

interface Address {
  ip?: string;
  port?: number;
  rest: string;
}

function takeDigits(text: string, from: number): { value: number; end: number } {
  let end = from;
  while (end < text.length && text.charCodeAt(end) >= 48 && text.charCodeAt(end) <= 57) end += 1;
  if (end === from) throw new RingBuilderError(`expected a number in ${JSON.stringify(text)}`);
  return { value: Number(text.slice(from, end)), end };
}

/** `<ip>[:<port>]` or `[<ipv6>][:<port>]` at the start of `text`. */
function parseAddress(text: string, original: string): Address {
  let ip: string | undefined;
  let rest = text;
  if (rest.startsWith('[')) {
    const close = rest.indexOf(']');
    if (close < 0) throw new RingBuilderError(`unterminated [ipv6] in ${JSON.stringify(original)}`);
    ip = rest.slice(1, close);
    rest = rest.slice(close + 1);
  } else {
    let end = 0;
    while (end < rest.length && /[0-9A-Za-z.-]/.test(rest[end] ?? '')) end += 1;
    if (end > 0) ip = rest.slice(0, end);
    rest = rest.slice(end);
  }
  let port: number | undefined;
  if (rest.startsWith(':')) {
    const digits = takeDigits(rest, 1);
    port = digits.value;
    rest = rest.slice(digits.end);
  }
  return { ip, port, rest };
}

function parseMeta(rest: string): string {
  let meta = rest.slice(1);
  if (meta.length >= 2 && meta.startsWith('"') && meta.endsWith('"')) meta = meta.slice(1, -1);
  return meta;
}

/** `r1z2-10.0.0.1:6200/sdb1_meta` -> device fields (weight comes separately). */
export function parseAddValue(value: string): Omit<AddDeviceInput, 'weight'> {
  let rest = value;
  let region = 1;
  if (rest.startsWith('r')) {
    const digits = takeDigits(rest, 1);
    region = digits.value;
    rest = rest.slice(digits.end);
  }
  if (!rest.startsWith('z')) throw new RingBuilderError(`Invalid add value: ${value}`);
  const zoneDigits = takeDigits(rest, 1);
  rest = rest.slice(zoneDigits.end);
  if (!rest.startsWith('-')) throw new RingBuilderError(`Invalid add value: ${value}`);
  const address = parseAddress(rest.slice(1), value);
  if (address.ip === undefined || address.port === undefined) {
    throw new RingBuilderError(`Invalid add value: ${value} (needs <ip>:<port>)`);
  }
  rest = address.rest;
  let replicationIp: string | undefined;
  let replicationPort: number | undefined;
  if (rest.startsWith('R')) {
    const replication = parseAddress(rest.slice(1), value);
    replicationIp = replication.ip;
    replicationPort = replication.port;
    rest = replication.rest;
  }
  if (!rest.startsWith('/')) throw new RingBuilderError(`Invalid add value: ${value} (needs /<device>)`);
  const metaAt = rest.indexOf('_');
  const device = metaAt < 0 ? rest.slice(1) : rest.slice(1, metaAt);
  if (device === '') throw new RingBuilderError(`Invalid device name in ${value}`);
  const meta = metaAt < 0 ? '' : parseMeta(rest.slice(metaAt));
  return {
    region,
    zone: zoneDigits.value,
    ip: address.ip,
    port: address.port,
    replication_ip: replicationIp ?? address.ip,
    replication_port: replicationPort ?? address.port,
    device,
    meta,
  };
}

/** `d3`, `r1z2`, `z1-127.0.0.1:6200/sdb1`, `127.0.0.1`, `/sdb1`, `_meta` -> search fields. */
export function parseSearchValue(value: string): DeviceSearch {
  const search: DeviceSearch = {};
  let rest = value;
  if (rest.startsWith('d')) {
    const digits = takeDigits(rest, 1);
    search.id = digits.value;
    rest = rest.slice(digits.end);
  }
  if (rest.startsWith('r')) {
    const digits = takeDigits(rest, 1);
    search.region = digits.value;
    rest = rest.slice(digits.end);
  }
  if (rest.startsWith('z')) {
    const digits = takeDigits(rest, 1);
    search.zone = digits.value;
    rest = rest.slice(digits.end);
  }
  if (rest.startsWith('-')) rest = rest.slice(1);
  if (rest !== '' && !rest.startsWith('R') && !rest.startsWith('/') && !rest.startsWith('_')) {
    const address = parseAddress(rest, value);
    if (address.ip !== undefined) search.ip = address.ip;
    if (address.port !== undefined) search.port = address.port;
    rest = address.rest;
  }
  if (rest.startsWith('R')) {
    const replication = parseAddress(rest.slice(1), value);
    if (replication.ip !== undefined) search.replication_ip = replication.ip;
    if (replication.port !== undefined) search.replication_port = replication.port;
    rest = replication.rest;
  }
  if (rest.startsWith('/')) {
    const metaAt = rest.indexOf('_');
    search.device = metaAt < 0 ? rest.slice(1) : rest.slice(1, metaAt);
    rest = metaAt < 0 ? '' : rest.slice(metaAt);
  }
  if (rest.startsWith('_')) {
    search.meta = parseMeta(rest);
    rest = '';
  }
  if (rest !== '') throw new RingBuilderError(`Invalid <search-value>: ${value}`);
  if (Object.keys(search).length === 0) throw new RingBuilderError(`Invalid <search-value>: ${JSON.stringify(value)}`);
  return search;
}

const LONG_OPTIONS: Readonly<Record<string, keyof AddDeviceInput>> = {
  '--id': 'id',
  '--region': 'region',
  '--zone': 'zone',
  '--ip': 'ip',
  '--port': 'port',
  '--replication-ip': 'replication_ip',
  '--replication-port': 'replication_port',
  '--device': 'device',
  '--meta': 'meta',
  '--weight': 'weight',
};
const NUMERIC: ReadonlySet<string> = new Set(['id', 'region', 'zone', 'port', 'replication_port', 'weight']);

/** Parses `--region 1 --zone 2 ...` (also `--zone=2`) into a record; unknown options throw. */
export function parseLongOptions(args: readonly string[]): Partial<AddDeviceInput> {
  const result: Record<string, string | number> = {};
  for (let index = 0; index < args.length; index += 1) {
    const arg = args[index] ?? '';
    const equals = arg.indexOf('=');
    const name = equals >= 0 ? arg.slice(0, equals) : arg;
    const key = LONG_OPTIONS[name];
    if (key === undefined) throw new RingBuilderError(`unknown option ${arg}`);
    let text: string | undefined;
    if (equals >= 0) text = arg.slice(equals + 1);
    else {
      index += 1;
      text = args[index];
    }
    if (text === undefined) throw new RingBuilderError(`option ${name} needs a value`);
    if (NUMERIC.has(key)) {
      const number = Number(text);
      if (text.trim() === '' || !Number.isFinite(number))
        throw new RingBuilderError(`option ${name} needs a number, got ${text}`);
      result[key] = number;
    } else {
      result[key] = text;
    }
  }
  return result;
}

export function formatDevice(device: {
  region: number;
  zone: number;
  ip: string;
  port: number;
  device: string;
}): string {
  const ip = device.ip.includes(':') ? `[${device.ip}]` : device.ip;
  return `r${device.region}z${device.zone}-${ip}:${device.port}/${device.device}`;
}
