/**
 * Swift's container ACLs (swift/common/middleware/acl.py): the `X-Container-Read` and
 * `X-Container-Write` value syntax, its cleaning on write, and the checks tempauth makes on read.
 *
 * An ACL is a comma-separated list of groups (`account`, `account:user`, `.rlistings`) and
 * referrer designations (`.r:*`, `.r:example.com`, `.r:.example.com`, `.r:-bad.example.com`).
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
