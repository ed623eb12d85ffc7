/**
 * Test helper for the S3 integration tests: a whole cluster (test/helpers/cluster.ts: storage
 * nodes and a proxy as real processes) plus an S3-enabled proxy on the same config, and clients
 * configured for it (access key `test:tester`, secret `testing`).
 */
import { S3Client } from '@aws-sdk/client-s3';
import { createLogger } from '../../common/log.js';
import { insertBefore } from '../../proxy/app.js';
import { loadProxyConfig } from '../../proxy/config.js';
import { startProxyServer, type RunningProxyServer } from '../../proxy/server.js';
import { s3apiStage } from '../../proxy/s3/stage.js';
import { startCluster, type ClusterOptions, type TestCluster } from '../helpers/cluster.js';

export const ACCESS_KEY = 'test:tester';
export const SECRET_KEY = 'testing';

export interface S3TestCluster {
  cluster: TestCluster;
  /** `http://127.0.0.1:<port>` of the S3-enabled proxy. */
  endpoint: string;
  client(options?: { forcePathStyle?: boolean }): S3Client;
  stop(): Promise<void>;
}

export async function startS3Cluster(options: ClusterOptions = {}): Promise<S3TestCluster> {
  const cluster = await startCluster(options);
  let proxy: RunningProxyServer | undefined;
  try {
    const config = loadProxyConfig(cluster.layout.proxyConfPath);
    proxy = await startProxyServer(
      { ...config, bindPort: 0, bindIp: '127.0.0.1' },
      createLogger('s3-test-proxy', 'silent'),
      (stages, context) =>
        stages.some((stage) => stage.name === 's3api') ? stages : insertBefore(stages, 'tempauth', s3apiStage(context)),
    );
  } catch (error) {
    await cluster.stop();
    throw error;
  }
  const running = proxy;
  const endpoint = `http://127.0.0.1:${running.port}`;
  const clients: S3Client[] = [];
  return {
    cluster,
    endpoint,
    client(clientOptions = {}) {
      const client = new S3Client({
        endpoint,
        region: 'us-east-1',
        forcePathStyle: clientOptions.forcePathStyle ?? true,
        credentials: { accessKeyId: ACCESS_KEY, secretAccessKey: SECRET_KEY },
        maxAttempts: 1,
      });
      clients.push(client);
      return client;
    },
    async stop() {
      for (const client of clients) client.destroy();
      try {
        await running.close(2000);
      } finally {
        await cluster.stop();
      }
    },
  };
}
