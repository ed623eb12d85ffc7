/**
 * Swift's ACLs (swift/common/middleware/acl.py), as tempauth reads them:
 *
 * - Container ACLs (version 1): the `X-Container-Read` and `X-Container-Write` value syntax, its
 *   cleaning on write, and the checks tempauth makes on read. An ACL is a comma-separated list of
 *   groups (`account`, `account:user`, `.rlistings`) and referrer designations (`.r:*`,
 *   `.r:example.com`, `.r:.example.com`, `.r:-bad.example.com`).
 * - Account ACLs (version 2): `X-Account-Access-Control`, a JSON object whose keys tempauth knows
 *   (`admin`, `read-write`, `read-only`) each list users (`account:user`) or groups; validated on
 *   write, kept as account sysmeta (`X-Account-Sysmeta-Core-Access-Control`), shown to owners in
 *   Swift's canonical form (sorted keys, no spaces, ASCII only).
 */

export class InvalidAclError extends Error {
  readonly code = 'InvalidAcl';
}

/**
 * Returns the cleaned ACL header value (`.ref:*.example.com` -> `.r:.example.com`, spaces and empty
 * items dropped), or throws InvalidAclError with Swift's message.
 */
export function cleanAcl(headerName: string, value: string): string {
  const name = headerName.toLowerCase();
  const values: string[] = [];
  for (const raw of value.split(',')) {
    const item = raw.trim();
    if (item === '') continue;
    const colon = item.indexOf(':');
    if (colon < 0) {
      values.push(item);
      continue;
    }
    const first = item.slice(0, colon).trim();
    let second = item.slice(colon + 1).trim();
    if (first === '' || !first.startsWith('.')) {
      values.push(item);
    } else if (['.r', '.ref', '.referer', '.referrer'].includes(first)) {
      if (name.includes('write')) throw new InvalidAclError(`Referrers not allowed in write ACL: '${item}'`);
      let negate = false;
      if (second.startsWith('-')) {
        negate = true;
        second = second.slice(1).trim();
      }
      if (second !== '' && second !== '*' && second.startsWith('*')) second = second.slice(1).trim();
      if (second === '' || second === '.') {
        throw new InvalidAclError(`No host/domain value after referrer designation in ACL: '${item}'`);
      }
      values.push(`.r:${negate ? '-' : ''}${second}`);
    } else {
      throw new InvalidAclError(`Unknown designator '${first}' in ACL: '${item}'`);
    }
  }
  return values.join(',');
}

export interface ParsedAcl {
  referrers: string[];
  groups: string[];
}

export function parseAcl(acl: string | undefined): ParsedAcl {
  const referrers: string[] = [];
  const groups: string[] = [];
  if (acl === undefined || acl === '') return { referrers, groups };
  for (const value of acl.split(',')) {
    if (value.startsWith('.r:')) referrers.push(value.slice(3));
    else groups.push(safeDecode(value));
  }
  return { referrers, groups };
}

function safeDecode(value: string): string {
  try {
    return decodeURIComponent(value);
  } catch {
    return value;
  }
}

/** Whether the Referer header's host passes the referrer list; later items override earlier ones. */
export function referrerAllowed(referer: string | undefined, referrers: readonly string[]): boolean {
  if (referrers.length === 0) return false;
  let host = 'unknown';
  try {
    const parsed = new URL(referer ?? '');
    if (parsed.hostname !== '') host = parsed.hostname.toLowerCase();
  } catch {
    // An absent or unparsable Referer is the host "unknown", as in Swift: only `.r:*` admits it.
  }
  let allow = false;
  for (const designation of referrers) {
    if (designation.startsWith('-')) {
      const denied = designation.slice(1);
      if (denied === host || (denied.startsWith('.') && host.endsWith(denied))) allow = false;
    } else if (
      designation === '*' ||
      designation === host ||
      (designation.startsWith('.') && host.endsWith(designation))
    ) {
      allow = true;
    }
  }
  return allow;
}

/** The account sysmeta that keeps an account's ACLs (Swift's `core-access-control`). */
export const ACCOUNT_ACL_SYSMETA = 'x-account-sysmeta-core-access-control';
export const ACCOUNT_ACL_HEADER = 'x-account-access-control';

export const ACCOUNT_ACL_LEVELS = ['admin', 'read-write', 'read-only'] as const;
export type AccountAclLevel = (typeof ACCOUNT_ACL_LEVELS)[number];
export type AccountAcls = Readonly<Record<AccountAclLevel, readonly string[]>>;

/** parse_acl(version=2): an object, `{}` for an empty value, undefined when not a JSON object. */
export function parseAclV2(data: string | undefined): Record<string, unknown> | undefined {
  if (data === undefined) return undefined;
  if (data === '') return {};
  try {
    const parsed: unknown = JSON.parse(data);
    if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) return undefined;
    return parsed as Record<string, unknown>;
  } catch {
    return undefined;
  }
}

/** format_acl(version=2): JSON with sorted keys, no spaces, non-ASCII as `\uXXXX`. */
export function formatAclV2(acl: Readonly<Record<string, unknown>>): string {
  const sorted = (value: unknown): unknown => {
    if (Array.isArray(value)) return value.map(sorted);
    if (value !== null && typeof value === 'object') {
      const record = value as Record<string, unknown>;
      return Object.fromEntries(
        Object.keys(record)
          .sort()
          .map((key) => [key, sorted(record[key])]),
      );
    }
    return value;
  };
  return JSON.stringify(sorted(acl)).replace(
    /[\u0080-\uffff]/g,
    (char) => `\\u${char.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );
}

/** Python's repr() of a str, for Swift's error text. */
function pythonRepr(value: string): string {
  const quote = value.includes("'") && !value.includes('"') ? '"' : "'";
  const escaped = value.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/\r/g, '\\r').replace(/\t/g, '\\t');
  return quote + (quote === "'" ? escaped.replace(/'/g, "\\'") : escaped) + quote;
}

/**
 * tempauth's extract_acl_and_report_errors: what is wrong with an X-Account-Access-Control value
 * (Swift's words), or undefined when tempauth can store it.
 */
export function accountAclError(value: string): string | undefined {
  const acl = parseAclV2(value);
  if (acl === undefined) return `Syntax error in input (${pythonRepr(value)})`;
  const levels: readonly string[] = ACCOUNT_ACL_LEVELS;
  for (const key of Object.keys(acl)) {
    if (!levels.includes(key)) return `Key ${JSON.stringify(key)} not recognized`;
  }
  for (const level of ACCOUNT_ACL_LEVELS) {
    if (!(level in acl)) continue;
    const members = acl[level];
    if (!Array.isArray(members)) return `Value for key ${JSON.stringify(level)} must be a list`;
    if (members.some((member) => typeof member !== 'string')) {
      return `Elements of ${JSON.stringify(level)} list must be strings`;
    }
  }
  return undefined;
}

/**
 * acls_from_account_info: the stored ACLs with every level present, or undefined when none is set
 * (or the stored value is not what tempauth wrote: an operator's hand edit grants nothing).
 */
export function accountAclsFromSysmeta(value: string | undefined): AccountAcls | undefined {
  const acl = parseAclV2(value);
  if (acl === undefined) return undefined;
  const members = (level: AccountAclLevel): string[] => {
    const list = acl[level];
    return Array.isArray(list) ? list.filter((member): member is string => typeof member === 'string') : [];
  };
  const acls: AccountAcls = {
    admin: members('admin'),
    'read-write': members('read-write'),
    'read-only': members('read-only'),
  };
  if (acls.admin.length === 0 && acls['read-write'].length === 0 && acls['read-only'].length === 0) return undefined;
  return acls;
}
