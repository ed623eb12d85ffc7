/**
 * Test helper for the S3 integration tests: a whole cluster (test/helpers/cluster.ts: storage
 * nodes and a proxy as real processes; the proxy's pipeline includes the s3api stage) and
 * clients configured for it (access key `test:tester`, secret `testing`).
 */
import { S3Client } from '@aws-sdk/client-s3';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { startCluster, type ClusterOptions, type TestCluster } from '../helpers/cluster.js';

export const ACCESS_KEY = 'test:tester';
export const SECRET_KEY = 'testing';

export interface S3TestCluster {
  cluster: TestCluster;
  /** `http://127.0.0.1:<port>` of the proxy. */
  endpoint: string;
  /** A client signing as `accessKeyId`/`secretAccessKey` (default test:tester), or with `anonymous` unsigned. */
  client(options?: {
    forcePathStyle?: boolean;
    accessKeyId?: string;
    secretAccessKey?: string;
    anonymous?: boolean;
  }): S3Client;
  stop(): Promise<void>;
}

export async function startS3Cluster(options: ClusterOptions = {}): Promise<S3TestCluster> {
  const cluster = await startCluster(options);
  const endpoint = cluster.proxyUrl;
  const clients: S3Client[] = [];
  return {
    cluster,
    endpoint,
    client(clientOptions = {}) {
      const client = new S3Client({
        endpoint,
        region: 'us-east-1',
        forcePathStyle: clientOptions.forcePathStyle ?? true,
        credentials: {
          accessKeyId: clientOptions.accessKeyId ?? ACCESS_KEY,
          secretAccessKey: clientOptions.secretAccessKey ?? SECRET_KEY,
        },
        // Anonymous: requests go out as built, with no Authorization header.
        ...(clientOptions.anonymous === true
          ? { signer: { sign: <Request>(request: Request) => Promise.resolve(request) } }
          : {}),
        maxAttempts: 1,
      });
      clients.push(client);
      return client;
    },
    async stop() {
      for (const client of clients) client.destroy();
      await cluster.stop();
    },
  };
}

/** Writes an s3cmd config for the cluster (SigV4, or SigV2 when asked) into `dir`; returns its path. */
export async function writeS3cmdConfig(dir: string, endpoint: string, signature: 'v2' | 'v4'): Promise<string> {
  const host = endpoint.replace('http://', '');
  const config = join(dir, 's3cfg');
  const lines = [
    '[default]',
    `access_key = ${ACCESS_KEY}`,
    `secret_key = ${SECRET_KEY}`,
    `host_base = ${host}`,
    `host_bucket = ${host}`,
    'use_https = False',
    `signature_v2 = ${signature === 'v2' ? 'True' : 'False'}`,
    ...(signature === 'v4' ? ['bucket_location = us-east-1'] : []),
    '',
  ];
  await writeFile(config, lines.join('\n'));
  return config;
}
