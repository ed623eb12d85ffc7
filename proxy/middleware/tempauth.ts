/**
 * Swift's tempauth (swift/common/middleware/tempauth.py), for the accounts of its reseller
 * prefixes (`reseller_prefix = AUTH, SERVICE`; the first one names tokens and storage URLs):
 * - `GET <auth_prefix>v1.0` (or `/auth/v1.0`, `/v1/<account>/auth`) with X-Auth-User/X-Auth-Key
 *   or X-Storage-User/X-Storage-Pass answers X-Auth-Token, X-Storage-Token, X-Storage-Url and
 *   X-Auth-Token-Expires; bad credentials are 401.
 * - A request with a token installs `authorize` for the controllers; an invalid or expired token
 *   is 401 at once. Without a token, `authorize` denies with 401 unless an ACL admits anonymous
 *   access (`.r:` referrers); with a valid token a denial is 403.
 * - Owners: a user's own account under every prefix (`.admin`), any account for `.reseller_admin`.
 *   Where `<prefix>require_group` is set, an owner also needs that group, which a request gains
 *   from the `X-Service-Token` of a user in it (its groups join the X-Auth-Token user's).
 * - Account ACLs (`X-Account-Access-Control`, see acl.ts): validated when sent (400), stored as
 *   account sysmeta, shown on account HEAD/GET to owners only; `admin` members act as owners,
 *   `read-write` members read everything and write containers and objects, `read-only` members
 *   read. They are read from the account info once per request, before the controllers run,
 *   and only for a user who is not already an owner: the owners' path costs nothing more.
 *
 * Tokens are stateless: `AUTH_tk` + hex(expiry seconds) + HMAC + hex(account:user), keyed by the
 * cluster secret, so every worker and every proxy sharing swift.conf accepts them without the
 * memcache Swift needs. The user's groups are read from the current config at each request.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import type { Context, Middleware, Next } from 'koa';
import { HttpError } from '../../common/errors.js';
import {
  ACCOUNT_ACL_HEADER,
  ACCOUNT_ACL_SYSMETA,
  accountAclError,
  accountAclsFromSysmeta,
  formatAclV2,
  parseAcl,
  parseAclV2,
  referrerAllowed,
  type AccountAcls,
} from '../acl.js';
import type { TempAuthConfig, TempAuthUser } from '../config.js';
import type { ProxyDeps } from '../controllers/base.js';
import { getAccountInfo } from '../controllers/info.js';
import type { AccountInfo } from '../info-cache.js';
import { parseSwiftPath, swiftPathOrUndefined, type SwiftPath } from '../request-path.js';
import { swiftState, type Authorize } from '../state.js';

const EXPIRY_HEX_LENGTH = 10;
const MAC_HEX_LENGTH = 32;
/** Tokens whose MAC was checked, kept so a client's every request costs no HMAC (bounded). */
const VERIFIED_TOKENS_MAX = 4096;

/** What a token's MAC vouches for: its user (`account:user`) and when it expires. */
interface VerifiedToken {
  accountUser: string;
  expiresS: number;
}

/** Account ACLs already read for this request, by account (undefined: the account has none). */
type KnownAccountAcls = ReadonlyMap<string, AccountAcls | undefined>;

export class TempAuth {
  /** Parsed ACLs per cached AccountInfo object: each stored value is parsed once, not per request. */
  private readonly parsedAcls = new WeakMap<AccountInfo, AccountAcls | undefined>();
  /** Tokens already verified by their MAC; the expiry and the user are still checked each time. */
  private readonly verifiedTokens = new Map<string, VerifiedToken>();

  /**
   * Without `deps` (unit tests of tokens) account ACLs are not consulted; everything else holds.
   */
  constructor(
    private readonly config: TempAuthConfig,
    private readonly validVersions: readonly string[],
    private readonly deps?: ProxyDeps,
  ) {}

  private mac(expiresHex: string, userHex: string): string {
    return createHmac('sha256', this.config.tokenSecret)
      .update(`${this.config.resellerPrefix}|${expiresHex}|${userHex}`)
      .digest('hex')
      .slice(0, MAC_HEX_LENGTH);
  }

  createToken(accountUser: string, expiresS: number): string {
    const expiresHex = Math.floor(expiresS).toString(16).padStart(EXPIRY_HEX_LENGTH, '0');
    const userHex = Buffer.from(accountUser).toString('hex');
    return `${this.config.resellerPrefix}tk${expiresHex}${this.mac(expiresHex, userHex)}${userHex}`;
  }

  /** The user a token names, when it is ours, intact and unexpired. */
  validateToken(token: string, nowS = Date.now() / 1000): TempAuthUser | undefined {
    const verified = this.verifiedTokens.get(token) ?? this.verifyToken(token);
    if (verified === undefined || verified.expiresS < nowS) return undefined;
    // The user is looked up each time: a user removed from the config loses access at once.
    return this.config.users.get(verified.accountUser);
  }

  /** Checks a token's form and MAC; remembers a good one (the HMAC is most of a request's auth cost). */
  private verifyToken(token: string): VerifiedToken | undefined {
    const prefix = `${this.config.resellerPrefix}tk`;
    if (!token.startsWith(prefix)) return undefined;
    const rest = token.slice(prefix.length);
    const expiresHex = rest.slice(0, EXPIRY_HEX_LENGTH);
    const mac = rest.slice(EXPIRY_HEX_LENGTH, EXPIRY_HEX_LENGTH + MAC_HEX_LENGTH);
    const userHex = rest.slice(EXPIRY_HEX_LENGTH + MAC_HEX_LENGTH);
    if (!/^[0-9a-f]+$/.test(expiresHex + mac + userHex) || userHex.length % 2 !== 0 || mac.length !== MAC_HEX_LENGTH) {
      return undefined;
    }
    const expected = Buffer.from(this.mac(expiresHex, userHex));
    if (!timingSafeEqual(expected, Buffer.from(mac))) return undefined;
    const verified = {
      accountUser: Buffer.from(userHex, 'hex').toString('utf8'),
      expiresS: Number.parseInt(expiresHex, 16),
    };
    // Bounded: when full, start over (tokens are re-verified at the cost of one HMAC each).
    if (this.verifiedTokens.size >= VERIFIED_TOKENS_MAX) this.verifiedTokens.clear();
    this.verifiedTokens.set(token, verified);
    return verified;
  }

  /**
   * Swift's _get_user_groups: `account,account:user,<groups>`, with `.admin` replaced by the
   * account under every reseller prefix (`AUTH_test,SERVICE_test`) and the storage URL's account.
   */
  userGroups(user: TempAuthUser): string[] {
    const groups = [user.account, user.accountUser, ...user.groups];
    const admin = groups.indexOf('.admin');
    if (admin >= 0) {
      groups.splice(admin, 1);
      const accountId = user.url.slice(user.url.lastIndexOf('/') + 1);
      for (const prefix of this.config.resellerPrefixes) {
        if (prefix !== '') groups.push(`${prefix}${user.account}`);
      }
      if (!groups.includes(accountId)) groups.push(accountId);
    }
    return groups;
  }

  /** The reseller prefix an account is under (non-empty ones first), or undefined when not ours. */
  private accountPrefix(account: string): string | undefined {
    const prefixes = this.config.resellerPrefixes;
    for (const prefix of prefixes) {
      if (prefix !== '' && account.startsWith(prefix)) return prefix;
    }
    return prefixes.includes('') ? '' : undefined;
  }

  /** Whether these groups own the account for this request (Swift's .admin test plus require_group). */
  private ownsAccount(
    userGroups: readonly string[],
    account: string,
    prefix: string,
    method: string,
    container?: string,
  ): boolean {
    if (!userGroups.includes(account) || (['DELETE', 'PUT'].includes(method) && container === undefined)) return false;
    const requireGroup = this.config.requireGroups.get(prefix);
    return requireGroup === undefined || userGroups.includes(requireGroup);
  }

  private aclsOf(info: AccountInfo): AccountAcls | undefined {
    if (this.parsedAcls.has(info)) return this.parsedAcls.get(info);
    const stored = info.headers[ACCOUNT_ACL_SYSMETA];
    const acls = accountAclsFromSysmeta(Array.isArray(stored) ? stored[0] : stored);
    this.parsedAcls.set(info, acls);
    return acls;
  }

  /** The account's ACLs: read for this request already, or from this worker's account info cache. */
  private accountAcls(account: string, known: KnownAccountAcls | undefined): AccountAcls | undefined {
    if (known?.has(account) === true) return known.get(account);
    const info = this.deps?.info.getAccount(account);
    return info === undefined ? undefined : this.aclsOf(info);
  }

  /**
   * Swift checks an X-Account-Access-Control value wherever tempauth is authoritative, before any
   * permission: 400 when tempauth could not store it; otherwise it travels on as account sysmeta.
   */
  private takeAccountAclHeader(ctx: Context, container: string | undefined): HttpError | undefined {
    const value = ctx.req.headers[ACCOUNT_ACL_HEADER];
    if (typeof value !== 'string') return undefined;
    const error = accountAclError(value);
    if (error !== undefined) {
      return new HttpError(400, `X-Account-Access-Control invalid: ${error}\n\nInput: ${value}\n`, {
        code: 'InvalidAccountAcl',
      });
    }
    delete ctx.req.headers[ACCOUNT_ACL_HEADER];
    if (container === undefined) ctx.req.headers[ACCOUNT_ACL_SYSMETA] = value;
    return undefined;
  }

  /** Swift's TempAuth.authorize, with the container ACL that applies passed in. */
  readonly authorize: Authorize = (ctx: Context, acl?: string): HttpError | undefined =>
    this.decide(ctx, acl, undefined);

  private decide(ctx: Context, acl: string | undefined, known: KnownAccountAcls | undefined): HttpError | undefined {
    const state = swiftState(ctx);
    const path = swiftPathOrUndefined(ctx.path, this.validVersions);
    if (path === undefined) return new HttpError(404);
    const { account, container, object } = path;
    const prefix = this.accountPrefix(account);
    if (prefix === undefined) return this.denied(ctx);
    const invalidAcl = this.takeAccountAclHeader(ctx, container);
    if (invalidAcl !== undefined) return invalidAcl;
    const userGroups = (state.remoteUser ?? '').split(',');
    const isResellerAccount = this.config.resellerPrefixes.includes(account);
    const dotAccount = account.slice(prefix.length).startsWith('.');
    if (userGroups.includes('.reseller_admin') && !isResellerAccount && !dotAccount) {
      state.swiftOwner = true;
      return undefined;
    }
    if (
      userGroups.includes('.reseller_reader') &&
      !isResellerAccount &&
      !dotAccount &&
      ['GET', 'HEAD'].includes(ctx.method)
    ) {
      return undefined;
    }
    if (this.ownsAccount(userGroups, account, prefix, ctx.method, container)) {
      state.swiftOwner = true;
      return undefined;
    }
    if (ctx.method === 'OPTIONS') return undefined;
    const { referrers, groups } = parseAcl(acl);
    if (referrerAllowed(ctx.get('referer') || undefined, referrers)) {
      if (object !== undefined || groups.includes('.rlistings')) return undefined;
    }
    if (userGroups.some((group) => group !== '' && groups.includes(group))) return undefined;
    // Anonymous users match no account ACL entry: skip the lookup.
    const accountAcls = state.remoteUser ? this.accountAcls(account, known) : undefined;
    if (accountAcls !== undefined) {
      const member = (level: keyof AccountAcls): boolean =>
        userGroups.some((group) => accountAcls[level].includes(group));
      const reading = ctx.method === 'GET' || ctx.method === 'HEAD';
      if (member('admin')) {
        state.swiftOwner = true;
        return undefined;
      }
      // read-write: everything on containers and objects, but only reads of the account itself.
      if (member('read-write') && (container !== undefined || reading)) return undefined;
      if (member('read-only') && reading) return undefined;
    }
    return this.denied(ctx);
  }

  /**
   * For a user who does not own the request's account (nor every account), reads that account's
   * ACLs now, so the synchronous authorize can decide; returns the authorize to install.
   */
  private async authorizeWithAccountAcls(ctx: Context, userGroups: readonly string[]): Promise<Authorize> {
    if (this.deps === undefined || userGroups.includes('.reseller_admin')) return this.authorize;
    // The common case, an owner below its own account, without parsing the whole path.
    const rawAccount = ctx.path.split('/', 3)[2] ?? '';
    if (ctx.method !== 'PUT' && ctx.method !== 'DELETE' && !rawAccount.includes('%')) {
      const prefix = this.accountPrefix(rawAccount);
      if (prefix !== undefined && this.ownsAccount(userGroups, rawAccount, prefix, ctx.method)) return this.authorize;
    }
    let path: SwiftPath | undefined;
    try {
      path = parseSwiftPath(ctx.path, this.validVersions);
    } catch {
      return this.authorize; // the controllers answer the bad path
    }
    if (path === undefined) return this.authorize;
    const prefix = this.accountPrefix(path.account);
    if (prefix === undefined || this.ownsAccount(userGroups, path.account, prefix, ctx.method, path.container)) {
      return this.authorize;
    }
    const info = await getAccountInfo(ctx, this.deps, path.account);
    const known: KnownAccountAcls = new Map([[path.account, this.aclsOf(info)]]);
    // Subrequests inherit this closure, so their checks see the same ACLs.
    return (subCtx: Context, acl?: string) => this.decide(subCtx, acl, known);
  }

  /**
   * Account HEAD/GET answers carry the stored ACLs as sysmeta: owners see them as
   * X-Account-Access-Control (Swift's add_acls_from_sys_metadata), nobody sees the sysmeta.
   */
  private showAccountAcls(ctx: Context): void {
    const stored = ctx.response.headers[ACCOUNT_ACL_SYSMETA];
    if (stored === undefined) return;
    ctx.remove(ACCOUNT_ACL_SYSMETA);
    if (!swiftState(ctx).swiftOwner) return;
    const acl = parseAclV2(Array.isArray(stored) ? stored[0] : String(stored));
    if (acl !== undefined && Object.keys(acl).length > 0) ctx.set('X-Account-Access-Control', formatAclV2(acl));
  }

  private realm(ctx: Context): string {
    try {
      return encodeURIComponent(parseSwiftPath(ctx.path, this.validVersions)?.account ?? 'unknown');
    } catch {
      return 'unknown';
    }
  }

  /** 403 for a known user, 401 for an anonymous one (Swift's denied_response). */
  private denied(ctx: Context): HttpError {
    const state = swiftState(ctx);
    if (state.remoteUser !== undefined && state.remoteUser !== '')
      return new HttpError(403, undefined, { code: 'Forbidden' });
    return new HttpError(401, undefined, { code: 'Unauthorized' });
  }

  /** Token requests: `GET <auth_prefix>v1.0`, `<auth_prefix>auth`, `<auth_prefix>v1/<account>/auth`. */
  handleAuthRequest(ctx: Context): void {
    if (ctx.method !== 'GET') {
      ctx.set('Allow', 'GET');
      throw new HttpError(405, undefined, { code: 'MethodNotAllowed' });
    }
    const segments = ctx.path.slice(this.config.authPrefix.length).split('/');
    const unauthorized = (realm: string): HttpError =>
      new HttpError(401, undefined, {
        code: 'Unauthorized',
        headers: { 'Www-Authenticate': `Swift realm="${realm}"` },
      });
    let account: string;
    let user: string;
    let key: string;
    if (segments[0] === 'v1' && segments[2] === 'auth' && segments.length <= 4) {
      account = decodeURIComponent(segments[1] ?? '');
      let given = ctx.get('x-storage-user');
      if (given === '') {
        given = ctx.get('x-auth-user');
        const colon = given.indexOf(':');
        if (colon < 0 || given.slice(0, colon) !== account) throw unauthorized(account);
        given = given.slice(colon + 1);
      }
      user = given;
      key = ctx.get('x-storage-pass') || ctx.get('x-auth-key');
    } else if (
      (segments[0] === 'auth' || segments[0] === 'v1.0') &&
      segments.length <= 2 &&
      (segments[1] ?? '') === ''
    ) {
      const given = ctx.get('x-auth-user') || ctx.get('x-storage-user');
      const colon = given.indexOf(':');
      if (colon < 0) throw unauthorized('unknown');
      account = given.slice(0, colon);
      user = given.slice(colon + 1);
      key = ctx.get('x-auth-key') || ctx.get('x-storage-pass');
    } else {
      throw new HttpError(400, undefined, { code: 'BadRequest' });
    }
    if (account === '' || user === '' || key === '') throw unauthorized(account || 'unknown');
    const found = this.config.users.get(`${account}:${user}`);
    if (found === undefined) throw unauthorized(account);
    const keyBuffer = Buffer.from(key);
    const expectedKey = Buffer.from(found.key);
    if (keyBuffer.length !== expectedKey.length || !timingSafeEqual(keyBuffer, expectedKey))
      throw unauthorized('unknown');
    const expiresS = Math.floor(Date.now() / 1000) + this.config.tokenLifeS;
    const token = this.createToken(found.accountUser, expiresS);
    let url = found.url.replace('$HOST', `${ctx.protocol}://${ctx.host}`);
    if (this.config.storageUrlScheme !== 'default')
      url = `${this.config.storageUrlScheme}:${url.slice(url.indexOf(':') + 1)}`;
    ctx.status = 200;
    ctx.set('X-Auth-Token', token);
    ctx.set('X-Storage-Token', token);
    ctx.set('X-Auth-Token-Expires', String(this.config.tokenLifeS));
    ctx.set('X-Storage-Url', url);
    ctx.body = '';
    ctx.type = 'text/html; charset=UTF-8';
  }

  middleware(): Middleware {
    return async (ctx: Context, next: Next): Promise<void> => {
      if (ctx.path.startsWith(this.config.authPrefix)) {
        this.handleAuthRequest(ctx);
        return;
      }
      const state = swiftState(ctx);
      const token = ctx.get('x-auth-token') || ctx.get('x-storage-token');
      if (token !== '' && token.startsWith(this.config.resellerPrefix)) {
        const user = this.validateToken(token);
        if (user === undefined) {
          const realm = this.realm(ctx);
          throw new HttpError(401, undefined, {
            code: 'Unauthorized',
            headers: { 'Www-Authenticate': `Swift realm="${realm}"` },
          });
        }
        const groups = this.userGroups(user);
        // A service token adds its user's groups; an invalid one adds nothing (Swift ignores it).
        const serviceToken = ctx.get('x-service-token');
        const serviceUser = serviceToken === '' ? undefined : this.validateToken(serviceToken);
        if (serviceUser !== undefined) groups.push(...this.userGroups(serviceUser));
        state.remoteUser = groups.join(',');
        state.authorize = await this.authorizeWithAccountAcls(ctx, groups);
      } else {
        // Anonymous (or someone else's token): only ACLs can admit it.
        state.authorize = this.authorize;
      }
      try {
        await next();
        this.showAccountAcls(ctx);
      } catch (error) {
        // Swift's 401s always name the realm (the account) the client should authenticate for.
        if (error instanceof HttpError && error.status === 401 && error.headers['Www-Authenticate'] === undefined) {
          error.headers['Www-Authenticate'] = `Swift realm="${this.realm(ctx)}"`;
        }
        throw error;
      }
    };
  }
}
