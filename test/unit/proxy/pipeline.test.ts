/**
 * The proxy app in-process (no storage nodes): tempauth tokens, the stage list, and subrequests
 * run through the stages after auth with the caller's identity.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import anyTest, { type TestFn } from 'ava';
import type { Context, Next } from 'koa';
import { parseIni, resolveIni } from '../../../common/config.js';
import { createLogger } from '../../../common/log.js';
import { AUTH_STAGE, createApp, insertAfter, type ProxyApp } from '../../../proxy/app.js';
import { proxyConfigFromIni, type ProxyConfig } from '../../../proxy/config.js';
import { TempAuth } from '../../../proxy/middleware/tempauth.js';
import type { ProxyRing, RingNode } from '../../../proxy/rings.js';
import { swiftState } from '../../../proxy/state.js';

interface Fixture {
  dir: string;
  config: ProxyConfig;
  proxy: ProxyApp;
  server: Server;
  url: string;
}

const test = anyTest as TestFn<Fixture>;

/** A ring whose only node refuses connections (port 9 on loopback is closed here). */
const deadRing: ProxyRing = {
  replicaCount: 1,
  getPartition: () => 0,
  getNodes: (): RingNode[] => [{ id: 0, ip: '127.0.0.1', port: 9, device: 'd1' }],
  getMoreNodes: () => [],
};

test.before(async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'nebula-proxy-unit-'));
  await writeFile(join(dir, 'swift.conf'), '[swift-hash]\nswift_hash_path_suffix = unit\n');
  const ini = resolveIni(
    parseIni(
      [
        '[app:proxy-server]',
        `swift_dir = ${dir}`,
        'conn_timeout = 0.2',
        'node_timeout = 1',
        '[filter:tempauth]',
        'token_life = 60',
        'user_test_tester = testing .admin',
        'user_test_tester3 = testing3',
      ].join('\n'),
    ),
    {},
  );
  const config = proxyConfigFromIni(ini, {});
  const proxy = createApp(config, {
    rings: { account: deadRing, container: deadRing, object: deadRing },
    log: createLogger('test', 'silent'),
    stages: (stages) =>
      insertAfter(stages, AUTH_STAGE, {
        name: 'test-stage',
        middleware: async (ctx: Context, next: Next) => {
          const state = swiftState(ctx);
          if (ctx.path === '/v1/AUTH_test/inner') {
            ctx.status = 200;
            ctx.body = `inner ${ctx.method} user=${state.remoteUser?.split(',')[1] ?? 'anonymous'} depth=${state.depth} ${ctx.get('x-probe')}`;
            return;
          }
          if (ctx.path === '/v1/AUTH_test/outer') {
            const inner = await state.subrequest({
              method: 'GET',
              path: '/v1/AUTH_test/inner',
              headers: { 'X-Probe': 'yes' },
              source: 'test',
            });
            const missing = await state.subrequest({ method: 'HEAD', path: '/v1/AUTH_test/c/o', source: 'test' });
            ctx.status = 200;
            ctx.body = `${(await inner.buffer()).toString()} | backend=${missing.status}`;
            return;
          }
          await next();
        },
      }),
  });
  const handle = proxy.app.callback();
  const server = createServer((req, res) => {
    void handle(req, res);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  t.context = { dir, config, proxy, server, url };
});

test.after.always(async (t) => {
  await new Promise<void>((resolve) => t.context.server.close(() => resolve()));
  t.context.proxy.close();
  await rm(t.context.dir, { recursive: true, force: true });
});

async function token(t: { context: Fixture }, user: string, key: string): Promise<string> {
  const response = await fetch(`${t.context.url}/auth/v1.0`, { headers: { 'X-Auth-User': user, 'X-Auth-Key': key } });
  return response.headers.get('x-auth-token') ?? '';
}

test('tokens: valid until they expire, refused when altered', (t) => {
  const auth = new TempAuth(t.context.config.tempauth, ['v1']);
  const now = Date.now() / 1000;
  const good = auth.createToken('test:tester', now + 60);
  t.is(auth.validateToken(good, now)?.accountUser, 'test:tester');
  t.is(auth.validateToken(good, now + 61), undefined);
  t.is(auth.validateToken(`${good.slice(0, -2)}00`, now), undefined);
  t.is(auth.validateToken('AUTH_tk0123', now), undefined);
  t.deepEqual(auth.userGroups(t.context.config.tempauth.users.get('test:tester')!), [
    'test',
    'test:tester',
    'AUTH_test',
  ]);
  t.deepEqual(auth.userGroups(t.context.config.tempauth.users.get('test:tester3')!), ['test', 'test:tester3']);
});

test('the stage list is ordered and named: inserted stages land where asked, the controllers last', (t) => {
  const names = t.context.proxy.stages.map((stage) => stage.name);
  const at = (name: string): number => names.indexOf(name);
  t.is(names[0], 'catch_errors');
  t.true(at('gatekeeper') < at('healthcheck') && at('healthcheck') < at('info') && at('info') < at('tempauth'));
  t.is(at('test-stage'), at('tempauth') + 1);
  t.is(names.at(-1), 'proxy-server');
});

test("etc/proxy-server.conf's pipeline line names the stages the proxy runs, in order", async (t) => {
  const sample = parseIni(await readFile(new URL('../../../../etc/proxy-server.conf', import.meta.url), 'utf8'));
  const running = t.context.proxy.stages.map((stage) => stage.name).filter((name) => name !== 'test-stage');
  t.deepEqual(sample['pipeline:main']?.pipeline?.split(/\s+/), running);
});

test('subrequests run the stages after auth with the caller identity and never throw', async (t) => {
  const response = await fetch(`${t.context.url}/v1/AUTH_test/outer`, {
    headers: { 'X-Auth-Token': await token(t, 'test:tester', 'testing') },
  });
  t.is(response.status, 200);
  t.is(await response.text(), 'inner GET user=test:tester depth=1 yes | backend=503');
});

test('gatekeeper strips internal headers from clients', async (t) => {
  const response = await fetch(`${t.context.url}/v1/AUTH_test/inner`, {
    headers: { 'X-Auth-Token': await token(t, 'test:tester', 'testing'), 'X-Backend-Probe': 'x', 'X-Probe': 'kept' },
  });
  t.is(await response.text(), 'inner GET user=test:tester depth=0 kept');
});

test('unreachable backends are a 503 with Swift body; invalid tokens a 401 with realm', async (t) => {
  const auth = { 'X-Auth-Token': await token(t, 'test:tester', 'testing') };
  const object = await fetch(`${t.context.url}/v1/AUTH_test/c/o`, { headers: auth });
  t.is(object.status, 503);
  t.regex(await object.text(), /Service Unavailable/);
  const invalid = await fetch(`${t.context.url}/v1/AUTH_test/c/o`, { headers: { 'X-Auth-Token': 'AUTH_tkbogus' } });
  t.is(invalid.status, 401);
  t.is(invalid.headers.get('www-authenticate'), 'Swift realm="AUTH_test"');
  const nonAdmin = await fetch(`${t.context.url}/v1/AUTH_test`, {
    headers: { 'X-Auth-Token': await token(t, 'test:tester3', 'testing3') },
  });
  t.is(nonAdmin.status, 403);
});
