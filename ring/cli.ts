#!/usr/bin/env node
/**
 * `nebula-ring`: swift-ring-builder's command line over Nebula's builder.
 *
 *   nebula-ring <builder>                                   devices, partitions, balance
 *   nebula-ring <builder> create <part_power> <replicas> <min_part_hours>
 *   nebula-ring <builder> add r1z1-127.0.0.1:6210/sdb1 100 [<value> <weight> ...]
 *   nebula-ring <builder> add --region 1 --zone 1 --ip 127.0.0.1 --port 6210 --device sdb1 --weight 100
 *   nebula-ring <builder> remove <search> [<search> ...] [--yes]
 *   nebula-ring <builder> set_weight <search> <weight> [<search> <weight> ...] [--yes]
 *   nebula-ring <builder> set_overload <fraction|percent%> | set_min_part_hours <hours>
 *   nebula-ring <builder> pretend_min_part_hours_passed | search <search> | validate | write_ring
 *   nebula-ring <builder> rebalance [--seed <seed>] [--force]  writes <name>.ring.gz beside <name>.builder
 *
 * Exit status as swift-ring-builder: 0 success, 1 warning (nothing to do, imbalanced or
 * undispersed result), 2 error. A search matching several devices needs `--yes` (Swift asks
 * interactively; a script cannot answer). `buildRing` is re-exported for programmatic use.
 */
import { existsSync, realpathSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { RingBuilder, type AddDeviceInput, type BuilderDevice } from './builder.js';
import { ringPathFor } from './build-ring.js';
import { parseAddValue, parseLongOptions, parseSearchValue } from './device-spec.js';
import { RingError } from './errors.js';
import { pythonFloatRepr, readRingFile, serializeRingData } from './ring-file.js';

export { buildRing, ringPathFor, type BuildRingOptions, type BuildRingResult } from './build-ring.js';

export const EXIT_SUCCESS = 0;
export const EXIT_WARNING = 1;
export const EXIT_ERROR = 2;

export interface CliIo {
  out: (line: string) => void;
  err: (line: string) => void;
}

const USAGE = `usage: nebula-ring <builder_file> [create <part_power> <replicas> <min_part_hours> | add <value> <weight> ... |
       remove <search> ... | set_weight <search> <weight> ... | set_overload <value> | set_min_part_hours <hours> |
       pretend_min_part_hours_passed | search <search> | rebalance [--seed N] [--force] | validate | write_ring]`;

/** `r1z1-127.0.0.1:6210R127.0.0.1:6210/sdb1_""`: the device form Swift prints. */
function describe(device: BuilderDevice): string {
  const ip = (value: string): string => (value.includes(':') ? `[${value}]` : value);
  return (
    `d${device.id}r${device.region}z${device.zone}-${ip(device.ip)}:${device.port}` +
    `R${ip(device.replication_ip)}:${device.replication_port}/${device.device}_"${device.meta}"`
  );
}

/** Python's timedelta str: `0:59:59`, `1 day, 2:00:00`. */
function timedelta(seconds: number): string {
  const days = Math.floor(seconds / 86400);
  const rest = seconds % 86400;
  const clock = `${Math.floor(rest / 3600)}:${String(Math.floor((rest % 3600) / 60)).padStart(2, '0')}:${String(rest % 60).padStart(2, '0')}`;
  return days > 0 ? `${days} day${days > 1 ? 's' : ''}, ${clock}` : clock;
}

function parseNumber(text: string | undefined, what: string): number {
  const value = Number(text);
  if (text === undefined || text.trim() === '' || !Number.isFinite(value)) {
    throw new RingError('InvalidArgument', `${what} must be a number (got ${JSON.stringify(text)})`);
  }
  return value;
}

function parseWholeNumber(text: string | undefined, what: string): number {
  const value = parseNumber(text, what);
  if (!Number.isInteger(value)) throw new RingError('InvalidArgument', `${what} must be a whole number (got ${text})`);
  return value;
}

/** Splits `--yes`/`-y` out of an argument list. */
function takeYes(args: readonly string[]): { yes: boolean; rest: string[] } {
  const rest = args.filter((arg) => arg !== '--yes' && arg !== '-y');
  return { yes: rest.length !== args.length, rest };
}

function matchDevices(builder: RingBuilder, search: string, yes: boolean, verb: string): BuilderDevice[] {
  const matches = builder.searchDevices(parseSearchValue(search));
  if (matches.length === 0) throw new RingError('NoSuchDevice', `Search value "${search}" matched 0 devices.`);
  if (matches.length > 1 && !yes) {
    throw new RingError(
      'AmbiguousSearch',
      `Search value "${search}" matched ${matches.length} devices:\n${matches.map(describe).join('\n')}\n` +
        `Add --yes to ${verb} all of them.`,
    );
  }
  return matches;
}

function showBuilder(builderPath: string, builder: RingBuilder, io: CliIo): number {
  io.out(`${builderPath}, build version ${builder.version}, id ${builder.id ?? '(not assigned)'}`);
  const { regions, zones, devices } = builder.topologyCounts();
  const parts = builder.partsPerDevice();
  const balance = devices > 0 ? builder.getBalance(parts) : 0;
  const dispersion = builder.dispersion === null ? '' : `, ${builder.dispersion.toFixed(2)} dispersion`;
  io.out(
    `${builder.partitionCount} partitions, ${builder.replicas.toFixed(6)} replicas, ${regions} regions, ` +
      `${zones} zones, ${devices} devices, ${balance.toFixed(2)} balance${dispersion}`,
  );
  io.out(
    `The minimum number of hours before a partition can be reassigned is ${builder.minPartHours} ` +
      `(${timedelta(builder.minPartSecondsLeft)} remaining)`,
  );
  io.out(
    builder.overload === null
      ? 'The overload factor is unlimited (dispersion always wins over weight)'
      : `The overload factor is ${(builder.overload * 100).toFixed(2)}% (${builder.overload.toFixed(6)})`,
  );
  const ringPath = ringPathFor(builderPath);
  if (!existsSync(ringPath)) {
    io.out(`Ring file ${ringPath} not found, probably it hasn't been written yet`);
  } else {
    try {
      const onDisk = serializeRingData(readRingFile(ringPath));
      const fromBuilder = builder.everRebalanced ? serializeRingData(builder.getRingData()) : undefined;
      io.out(
        `Ring file ${ringPath} is ${fromBuilder !== undefined && onDisk.equals(fromBuilder) ? 'up-to-date' : 'obsolete'}`,
      );
    } catch (error) {
      io.out(`Ring file ${ringPath} is invalid: ${(error as Error).message}`);
    }
  }
  const balances = devices > 0 ? builder.balancePerDevice(parts) : new Map<number, number>();
  const list = [...builder.devices].sort(
    (a, b) =>
      a.region - b.region ||
      a.zone - b.zone ||
      (a.ip < b.ip ? -1 : a.ip > b.ip ? 1 : 0) ||
      (a.device < b.device ? -1 : a.device > b.device ? 1 : 0),
  );
  const showIp = (value: string): string => (value.includes(':') ? `[${value}]` : value);
  let ipWidth = 10;
  let portWidth = 4;
  let replicationIpWidth = 14;
  let replicationPortWidth = 4;
  let weightWidth = 6;
  for (const device of list) {
    ipWidth = Math.max(ipWidth, showIp(device.ip).length);
    replicationIpWidth = Math.max(replicationIpWidth, showIp(device.replication_ip).length);
    portWidth = Math.max(portWidth, String(device.port).length);
    replicationPortWidth = Math.max(replicationPortWidth, String(device.replication_port).length);
    weightWidth = Math.max(weightWidth, device.weight.toFixed(2).length);
  }
  const right = (text: string | number, width: number): string => String(text).padStart(width);
  const left = (text: string | number, width: number): string => String(text).padEnd(width);
  io.out(
    `Devices:${right('id', 5)} ${right('region', 6)} ${right('zone', 4)} ${right('ip address', ipWidth)}:${left('port', portWidth)} ` +
      `${right('replication ip', replicationIpWidth)}:${left('port', replicationPortWidth)} ${right('name', 5)} ` +
      `${right('weight', weightWidth)} ${right('partitions', 10)} ${right('balance', 7)} ${right('flags', 5)} meta`,
  );
  for (const device of list) {
    io.out(
      `${right(device.id, 13)} ${right(device.region, 6)} ${right(device.zone, 4)} ${right(showIp(device.ip), ipWidth)}:` +
        `${left(device.port, portWidth)} ${right(showIp(device.replication_ip), replicationIpWidth)}:` +
        `${left(device.replication_port, replicationPortWidth)} ${right(device.device, 5)} ` +
        `${right(device.weight.toFixed(2), weightWidth)} ${right(parts[device.id] ?? 0, 10)} ` +
        `${right((balances.get(device.id) ?? 0).toFixed(2), 7)} ${right(builder.isMarkedForRemoval(device.id) ? 'DEL' : '', 5)} ${device.meta}`,
    );
  }
  return EXIT_SUCCESS;
}

function addDevices(builder: RingBuilder, args: readonly string[], io: CliIo): void {
  const inputs: AddDeviceInput[] = [];
  if (args[0]?.startsWith('--') === true) {
    const options = parseLongOptions(args);
    for (const key of ['zone', 'ip', 'port', 'device', 'weight'] as const) {
      if (options[key] === undefined) throw new RingError('InvalidArgument', `add: --${key} is required`);
    }
    inputs.push(options as AddDeviceInput);
  } else {
    if (args.length === 0 || args.length % 2 !== 0) {
      throw new RingError('InvalidArgument', 'add needs pairs of <value> <weight>, e.g. r1z1-127.0.0.1:6210/sdb1 100');
    }
    for (let index = 0; index < args.length; index += 2) {
      inputs.push({ ...parseAddValue(args[index] ?? ''), weight: parseNumber(args[index + 1], 'weight') });
    }
  }
  for (const input of inputs) {
    const id = builder.addDevice(input);
    const device = builder.device(id) as BuilderDevice;
    io.out(`Device ${describe(device)} with ${pythonFloatRepr(device.weight)} weight got id ${id}`);
  }
}

function rebalance(builderPath: string, builder: RingBuilder, args: readonly string[], io: CliIo): number {
  let seed: string | undefined;
  let force = false;
  for (let index = 0; index < args.length; index += 1) {
    const arg = args[index] ?? '';
    if (arg === '--force' || arg === '-f') force = true;
    else if (arg === '--seed' || arg === '-s') seed = args[++index];
    else if (arg.startsWith('--seed=')) seed = arg.slice('--seed='.length);
    else if (!arg.startsWith('-')) seed = arg;
    else throw new RingError('InvalidArgument', `rebalance: unknown option ${arg}`);
  }
  const devsChanged = builder.devsChanged;
  const secondsLeft = builder.minPartSecondsLeft;
  const lastBalance = builder.everRebalanced ? builder.getBalance() : 0;
  const lastDispersion = builder.dispersion;
  const result = builder.rebalance(seed);
  if (!(result.changedParts > 0 || force || result.removedDevices > 0)) {
    io.out('No partitions could be reassigned.');
    if (secondsLeft > 0) {
      io.out(
        `The time between rebalances must be at least min_part_hours: ${builder.minPartHours} hours ` +
          `(${timedelta(secondsLeft)} remaining)`,
      );
    } else {
      io.out('There is no need to do so at this time');
    }
    return EXIT_WARNING;
  }
  const balanceChanged = Math.abs(lastBalance - result.balance) >= 1;
  const dispersionChanged = lastDispersion === null || Math.abs(lastDispersion - result.dispersion) >= 1;
  if (!force && !devsChanged && !balanceChanged && !dispersionChanged) {
    io.out('Cowardly refusing to save rebalance as it did not change at least 1%.');
    return EXIT_WARNING;
  }
  builder.validate();
  io.out(
    `Reassigned ${result.changedParts} (${((100 * result.changedParts) / builder.partitionCount).toFixed(2)}%) partitions. ` +
      `Balance is now ${result.balance.toFixed(2)}.  Dispersion is now ${result.dispersion.toFixed(2)}`,
  );
  let status = EXIT_SUCCESS;
  if (result.dispersion > 0) {
    io.out('-'.repeat(79));
    io.out(
      `NOTE: Dispersion of ${result.dispersion.toFixed(6)} indicates some parts are not\n      optimally dispersed.`,
    );
    io.out('-'.repeat(79));
    status = EXIT_WARNING;
  } else if (result.balance > 5 && result.balance / 100 > (builder.overload ?? 0)) {
    io.out('-'.repeat(79));
    io.out(`NOTE: Balance of ${result.balance.toFixed(2)} indicates you should push this `);
    io.out(`      ring, wait at least ${builder.minPartHours} hours, and rebalance/repush.`);
    io.out('-'.repeat(79));
    status = EXIT_WARNING;
  }
  builder.writeRing(ringPathFor(builderPath));
  builder.save(builderPath);
  return status;
}

/** Runs one command; returns the exit status. Never throws for bad input (exit 2 instead). */
export function runCli(argv: readonly string[], io: CliIo = { out: console.log, err: console.error }): number {
  const [builderPath, command, ...rest] = argv;
  if (builderPath === undefined || builderPath === '-h' || builderPath === '--help') {
    io.out(USAGE);
    return builderPath === undefined ? EXIT_ERROR : EXIT_SUCCESS;
  }
  try {
    if (command === 'create') {
      if (rest.length !== 3)
        throw new RingError('InvalidArgument', 'create needs <part_power> <replicas> <min_part_hours>');
      const builder = new RingBuilder(
        parseWholeNumber(rest[0], 'part_power'),
        parseNumber(rest[1], 'replicas'),
        parseWholeNumber(rest[2], 'min_part_hours'),
      );
      builder.save(builderPath);
      return EXIT_SUCCESS;
    }
    if (!existsSync(builderPath)) {
      io.err(`Ring Builder file does not exist: ${builderPath}`);
      return EXIT_ERROR;
    }
    const builder = RingBuilder.load(builderPath);
    switch (command) {
      case undefined:
        return showBuilder(builderPath, builder, io);
      case 'add':
        addDevices(builder, rest, io);
        builder.save(builderPath);
        return EXIT_SUCCESS;
      case 'remove': {
        const { yes, rest: searches } = takeYes(rest);
        if (searches.length === 0) throw new RingError('InvalidArgument', 'remove needs <search-value>');
        for (const search of searches) {
          for (const device of matchDevices(builder, search, yes, 'remove')) {
            builder.removeDevice(device.id);
            io.out(`${describe(device)} marked for removal and will be removed next rebalance.`);
          }
        }
        builder.save(builderPath);
        return EXIT_SUCCESS;
      }
      case 'set_weight': {
        const { yes, rest: pairs } = takeYes(rest);
        if (pairs.length === 0 || pairs.length % 2 !== 0) {
          throw new RingError('InvalidArgument', 'set_weight needs pairs of <search-value> <weight>');
        }
        for (let index = 0; index < pairs.length; index += 2) {
          const weight = parseNumber(pairs[index + 1], 'weight');
          for (const device of matchDevices(builder, pairs[index] ?? '', yes, 'set the weight of')) {
            builder.setDeviceWeight(device.id, weight);
            io.out(`${describe(device)} weight set to ${pythonFloatRepr(weight)}`);
          }
        }
        builder.save(builderPath);
        return EXIT_SUCCESS;
      }
      case 'set_overload': {
        const text = rest[0] ?? '';
        const overload = text.endsWith('%')
          ? parseNumber(text.slice(0, -1), 'overload') / 100
          : parseNumber(text, 'overload');
        builder.setOverload(overload);
        io.out(`The overload factor is now ${(overload * 100).toFixed(2)}% (${overload.toFixed(6)})`);
        builder.save(builderPath);
        return EXIT_SUCCESS;
      }
      case 'set_min_part_hours':
        builder.setMinPartHours(parseWholeNumber(rest[0], 'min_part_hours'));
        io.out(
          `The minimum number of hours before a partition can be reassigned is now set to ${builder.minPartHours}`,
        );
        builder.save(builderPath);
        return EXIT_SUCCESS;
      case 'pretend_min_part_hours_passed':
        builder.pretendMinPartHoursPassed();
        builder.save(builderPath);
        return EXIT_SUCCESS;
      case 'search': {
        const matches = builder.searchDevices(parseSearchValue(rest[0] ?? ''));
        if (matches.length === 0) {
          io.out('No matching devices found');
          return EXIT_ERROR;
        }
        for (const device of matches) io.out(`${describe(device)} weight ${pythonFloatRepr(device.weight)}`);
        return EXIT_SUCCESS;
      }
      case 'rebalance':
        return rebalance(builderPath, builder, rest, io);
      case 'validate':
        builder.validate();
        return EXIT_SUCCESS;
      case 'write_ring':
        builder.writeRing(ringPathFor(builderPath));
        return EXIT_SUCCESS;
      default:
        io.err(`Unknown command: ${command}`);
        io.err(USAGE);
        return EXIT_ERROR;
    }
  } catch (error) {
    if (error instanceof RingError) {
      io.err(error.message);
      return EXIT_ERROR;
    }
    throw error;
  }
}

function invokedDirectly(): boolean {
  const script = process.argv[1];
  if (script === undefined) return false;
  try {
    return import.meta.url === pathToFileURL(realpathSync(script)).href;
  } catch {
    return false;
  }
}

if (invokedDirectly()) {
  process.exitCode = runCli(process.argv.slice(2));
}
