/**
 * Configuration in the OpenStack way: INI files with `[sections]` and `option = value` lines,
 * as Swift's `*-server.conf` and `swift.conf` are written (`#`/`;` comments, `:` or `=`,
 * indented continuation lines, `[DEFAULT]` values inherited by every section).
 *
 * Environment overrides: `NEBULA_<SECTION>__<OPTION>` (section and option upper-cased, any
 * non-alphanumeric replaced by `_`) replaces an option, e.g. `NEBULA_DEFAULT__BIND_PORT=0`.
 * Config is read once at start and frozen; services read options through the typed getters.
 */
import { readFileSync } from 'node:fs';

export type IniSection = Readonly<Record<string, string>>;
export type Ini = Readonly<Record<string, IniSection>>;

export class ConfigError extends Error {
  readonly code = 'ConfigError';
}

export function parseIni(text: string, source = '<string>'): Record<string, Record<string, string>> {
  const sections: Record<string, Record<string, string>> = { DEFAULT: {} };
  let current: Record<string, string> | undefined;
  let lastKey: string | undefined;
  const lines = text.split(/\r?\n/);
  for (let index = 0; index < lines.length; index += 1) {
    const line = lines[index] ?? '';
    const trimmed = line.trim();
    if (trimmed === '' || trimmed.startsWith('#') || trimmed.startsWith(';')) {
      lastKey = undefined;
      continue;
    }
    if (/^\s/.test(line) && current !== undefined && lastKey !== undefined) {
      current[lastKey] = `${current[lastKey] ?? ''}\n${trimmed}`; // continuation line
      continue;
    }
    const header = /^\[([^\]]+)\]$/.exec(trimmed);
    if (header !== null) {
      const name = (header[1] ?? '').trim();
      current = sections[name] ??= {};
      lastKey = undefined;
      continue;
    }
    const assignment = /^([^=:]+?)\s*[=:]\s*(.*)$/.exec(trimmed);
    if (assignment === null || current === undefined) {
      throw new ConfigError(`${source}:${index + 1}: cannot parse ${JSON.stringify(line)}`);
    }
    lastKey = (assignment[1] ?? '').toLowerCase();
    current[lastKey] = assignment[2] ?? '';
  }
  return sections;
}

function envName(section: string, option: string): string {
  const clean = (s: string): string => s.toUpperCase().replace(/[^A-Z0-9]/g, '_');
  return `NEBULA_${clean(section)}__${clean(option)}`;
}

/** The environment variables that override options of `section`, as option -> value. */
function envOverrides(section: string, env: NodeJS.ProcessEnv): Record<string, string> {
  const prefix = envName(section, '');
  const overrides: Record<string, string> = {};
  for (const [key, value] of Object.entries(env)) {
    if (value !== undefined && key.startsWith(prefix) && key.length > prefix.length) {
      overrides[key.slice(prefix.length).toLowerCase()] = value;
    }
  }
  return overrides;
}

/** Applies `[DEFAULT]` inheritance and `NEBULA_SECTION__OPTION` overrides, then freezes. */
export function resolveIni(raw: Record<string, Record<string, string>>, env: NodeJS.ProcessEnv = process.env): Ini {
  const defaults = { ...(raw.DEFAULT ?? {}), ...envOverrides('DEFAULT', env) };
  const resolved: Record<string, IniSection> = {};
  for (const name of Object.keys(raw)) {
    resolved[name] = Object.freeze({ ...defaults, ...(raw[name] ?? {}), ...envOverrides(name, env) });
  }
  resolved.DEFAULT = Object.freeze(defaults);
  return Object.freeze(resolved);
}

export function loadIniFile(path: string, env: NodeJS.ProcessEnv = process.env): Ini {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new ConfigError(
      `cannot read config file ${path}: ${error instanceof Error ? error.message : String(error)}`,
      {
        cause: error,
      },
    );
  }
  return resolveIni(parseIni(text, path), env);
}

/** Typed access to one section, with Swift's truthy values (`true`, `yes`, `on`, `1`). */
export class ConfigSection {
  constructor(
    readonly name: string,
    readonly values: IniSection,
  ) {}

  /** A section of the file, or (when the file lacks it) `[DEFAULT]` plus the environment's overrides. */
  static of(ini: Ini, name: string, env: NodeJS.ProcessEnv = process.env): ConfigSection {
    return new ConfigSection(name, ini[name] ?? Object.freeze({ ...(ini.DEFAULT ?? {}), ...envOverrides(name, env) }));
  }

  has(option: string): boolean {
    return this.values[option] !== undefined;
  }

  string(option: string, fallback: string): string {
    return this.values[option] ?? fallback;
  }

  optionalString(option: string): string | undefined {
    return this.values[option];
  }

  int(option: string, fallback: number): number {
    const raw = this.values[option];
    if (raw === undefined || raw.trim() === '') return fallback;
    const value = Number(raw);
    if (!Number.isInteger(value))
      throw new ConfigError(`[${this.name}] ${option} must be an integer, got ${JSON.stringify(raw)}`);
    return value;
  }

  float(option: string, fallback: number): number {
    const raw = this.values[option];
    if (raw === undefined || raw.trim() === '') return fallback;
    const value = Number(raw);
    if (!Number.isFinite(value))
      throw new ConfigError(`[${this.name}] ${option} must be a number, got ${JSON.stringify(raw)}`);
    return value;
  }

  bool(option: string, fallback: boolean): boolean {
    const raw = this.values[option];
    if (raw === undefined || raw.trim() === '') return fallback;
    return isTruthy(raw);
  }

  list(option: string, fallback: string[] = []): string[] {
    const raw = this.values[option];
    if (raw === undefined) return fallback;
    return raw.split(/[,\s]+/).filter(Boolean);
  }
}

export function isTruthy(value: string | undefined): boolean {
  return value !== undefined && ['true', '1', 'yes', 'on', 't', 'y'].includes(value.trim().toLowerCase());
}
