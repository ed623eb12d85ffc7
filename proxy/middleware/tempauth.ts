/**
 * Swift's tempauth (swift/common/middleware/tempauth.py), for `reseller_prefix` accounts:
 * - `GET <auth_prefix>v1.0` (or `/auth/v1.0`, `/v1/<account>/auth`) with X-Auth-User/X-Auth-Key
 *   or X-Storage-User/X-Storage-Pass answers X-Auth-Token, X-Storage-Token, X-Storage-Url and
 *   X-Auth-Token-Expires; bad credentials are 401.
 * - A request with a token installs `authorize` for the controllers; an invalid or expired token
 *   is 401 at once. Without a token, `authorize` denies with 401 unless an ACL admits anonymous
 *   access (`.r:` referrers); with a valid token a denial is 403.
 *
 * Tokens are stateless: `AUTH_tk` + hex(expiry seconds) + HMAC + hex(account:user), keyed by the
 * cluster secret, so every worker and every proxy sharing swift.conf accepts them without the
 * memcache Swift needs. The user's groups are read from the current config at each request.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import type { Context, Middleware, Next } from 'koa';
import { HttpError } from '../../common/errors.js';
import { parseAcl, referrerAllowed } from '../acl.js';
import type { TempAuthConfig, TempAuthUser } from '../config.js';
import { parseSwiftPath, type SwiftPath } from '../request-path.js';
import { swiftState, type Authorize } from '../state.js';

const EXPIRY_HEX_LENGTH = 10;
const MAC_HEX_LENGTH = 32;

export class TempAuth {
  constructor(
    private readonly config: TempAuthConfig,
    private readonly validVersions: readonly string[],
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
    if (Number.parseInt(expiresHex, 16) < nowS) return undefined;
    return this.config.users.get(Buffer.from(userHex, 'hex').toString('utf8'));
  }

  /** Swift's _get_user_groups: `account,account:user,<groups>`, with `.admin` replaced by the account id. */
  userGroups(user: TempAuthUser): string[] {
    const groups = [user.account, user.accountUser, ...user.groups];
    const admin = groups.indexOf('.admin');
    if (admin >= 0) {
      groups.splice(admin, 1);
      const accountId = user.url.slice(user.url.lastIndexOf('/') + 1);
      const prefixed = `${this.config.resellerPrefix}${user.account}`;
      if (this.config.resellerPrefix !== '') groups.push(prefixed);
      if (!groups.includes(accountId)) groups.push(accountId);
    }
    return groups;
  }

  private isOurAccount(account: string): boolean {
    return this.config.resellerPrefix === '' || account.startsWith(this.config.resellerPrefix);
  }

  /** Swift's TempAuth.authorize, with the container ACL that applies passed in. */
  readonly authorize: Authorize = (ctx: Context, acl?: string): HttpError | undefined => {
    const state = swiftState(ctx);
    let path: SwiftPath | undefined;
    try {
      path = parseSwiftPath(ctx.path, this.validVersions);
    } catch {
      path = undefined;
    }
    if (path === undefined) return new HttpError(404);
    const { account, container, object } = path;
    if (!this.isOurAccount(account)) return this.denied(ctx);
    const userGroups = (state.remoteUser ?? '').split(',');
    const prefix = this.config.resellerPrefix;
    const dotAccount = account.slice(prefix.length).startsWith('.');
    if (userGroups.includes('.reseller_admin') && account !== prefix && !dotAccount) {
      state.swiftOwner = true;
      return undefined;
    }
    if (
      userGroups.includes('.reseller_reader') &&
      account !== prefix &&
      !dotAccount &&
      ['GET', 'HEAD'].includes(ctx.method)
    ) {
      return undefined;
    }
    if (userGroups.includes(account) && (!['DELETE', 'PUT'].includes(ctx.method) || container !== undefined)) {
      state.swiftOwner = true;
      return undefined;
    }
    if (ctx.method === 'OPTIONS') return undefined;
    const { referrers, groups } = parseAcl(acl);
    if (referrerAllowed(ctx.get('referer') || undefined, referrers)) {
      if (object !== undefined || groups.includes('.rlistings')) return undefined;
    }
    if (userGroups.some((group) => group !== '' && groups.includes(group))) return undefined;
    return this.denied(ctx);
  };

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
        state.remoteUser = this.userGroups(user).join(',');
        state.authorize = this.authorize;
      } else {
        // Anonymous (or someone else's token): only ACLs can admit it.
        state.authorize = this.authorize;
      }
      try {
        await next();
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
