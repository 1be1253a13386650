// TLS and mTLS over loopback with certificates made for this test by openssl (nothing committed).
import { execFileSync } from 'node:child_process';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { status } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkHealth, createClient } from './client.js';
import { loadServiceConfig } from './config.js';
import { echoHandlers, EchoService, tempDir, writeTokenFile } from './echo-service.test-helper.js';
import { createServer, type ServiceServer } from './server.js';

const dir = tempDir();
const file = (name: string): string => join(dir, name);
const TOKEN = 'tls-token-0123';

function openssl(...args: string[]): void {
  execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
}

/** A CA, a server certificate for localhost / 127.0.0.1 and a client certificate, all signed by the CA. */
function makeCertificates(): void {
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  openssl(
    'req',
    '-x509',
    ...ec,
    '-keyout',
    'ca.key',
    '-out',
    'ca.crt',
    '-days',
    '1',
    '-subj',
    '/CN=hm3-test-ca',
  );
  writeFileSync(
    file('server.ext'),
    'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n',
  );
  writeFileSync(file('client.ext'), 'extendedKeyUsage=clientAuth\n');
  for (const who of ['server', 'client']) {
    openssl('req', ...ec, '-keyout', `${who}.key`, '-out', `${who}.csr`, '-subj', `/CN=hm3-test-${who}`);
    openssl(
      'x509',
      '-req',
      '-in',
      `${who}.csr`,
      '-CA',
      'ca.crt',
      '-CAkey',
      'ca.key',
      '-CAcreateserial',
      '-out',
      `${who}.crt`,
      '-days',
      '1',
      '-extfile',
      `${who}.ext`,
    );
  }
}

async function startServer(mtls: boolean): Promise<ServiceServer> {
  const config = loadServiceConfig({
    env: {
      HM3_HOST: '127.0.0.1',
      HM3_PORT: '0',
      HM3_METRICS_PORT: 'off',
      HM3_TOKEN_FILE: file('tokens'),
      HM3_LOG_LEVEL: 'silent',
    },
    argv: [
      '--tls-cert-file',
      file('server.crt'),
      '--tls-key-file',
      file('server.key'),
      '--tls-ca-file',
      file('ca.crt'),
      mtls ? '--mtls' : '--no-mtls',
      '--shutdown-drain-delay-ms',
      '0',
    ],
  });
  const server = createServer(config).addService(EchoService, echoHandlers());
  await server.start();
  return server;
}

describe('TLS and mTLS', () => {
  let tls: ServiceServer;
  let mtls: ServiceServer;

  beforeAll(async () => {
    makeCertificates();
    writeTokenFile(file('tokens'), [TOKEN]);
    tls = await startServer(false);
    mtls = await startServer(true);
  });

  afterAll(async () => {
    await Promise.all([tls.shutdown(), mtls.shutdown()]);
    rmSync(dir, { recursive: true, force: true });
  });

  it('serves over TLS to a client that trusts the CA, and not to a plaintext client', async () => {
    const address = `localhost:${tls.port}`;
    const secure = createClient(EchoService, { address, token: TOKEN, tls: { caFile: file('ca.crt') } });
    await expect(secure.echo({ text: 'over tls' })).resolves.toMatchObject({ text: 'over tls' });
    secure.close();
    await expect(checkHealth({ address, tls: { caFile: file('ca.crt') } })).resolves.toBe('SERVING');
    const plain = createClient(EchoService, { address, token: TOKEN, retry: false });
    await expect(
      plain.echo({ text: 'plain' }, { deadlineMs: 2000 }).catch((e: { code: number }) => e.code),
    ).resolves.toBe(status.UNAVAILABLE);
    plain.close();
  });

  it('mTLS accepts a client with a certificate from the CA and refuses one without', async () => {
    const address = `localhost:${mtls.port}`;
    const withCert = createClient(EchoService, {
      address,
      token: TOKEN,
      tls: { caFile: file('ca.crt'), certFile: file('client.crt'), keyFile: file('client.key') },
    });
    await expect(withCert.echo({ text: 'mutual' })).resolves.toMatchObject({ text: 'mutual' });
    withCert.close();
    const withoutCert = createClient(EchoService, {
      address,
      token: TOKEN,
      tls: { caFile: file('ca.crt') },
      retry: false,
    });
    await expect(
      withoutCert.echo({ text: 'who am i' }, { deadlineMs: 2000 }).catch((e: { code: number }) => e.code),
    ).resolves.toBe(status.UNAVAILABLE);
    withoutCert.close();
  });
});
