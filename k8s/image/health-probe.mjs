#!/usr/bin/env node
// The liveness / readiness probe of a service running with TLS or mTLS, where Kubernetes' native
// gRPC probe cannot connect (it speaks plaintext only). Runs the standard grpc.health.v1 Check of
// the whole server ('') on localhost:$HM3_PORT with the pod's own certificate as the client's, and
// exits 0 only when the answer is SERVING. Copied into the image as /app/health-probe.mjs.
import { checkHealth } from '@hm3/service-kit';

const env = process.env;
const port = env.HM3_PORT ?? '50051';
const tls =
  env.HM3_TLS_CERT_FILE === undefined
    ? undefined
    : {
        ...(env.HM3_TLS_CA_FILE ? { caFile: env.HM3_TLS_CA_FILE } : {}),
        certFile: env.HM3_TLS_CERT_FILE,
        ...(env.HM3_TLS_KEY_FILE ? { keyFile: env.HM3_TLS_KEY_FILE } : {}),
      };
const channelOptions = env.HM3_TLS_SERVER_NAME
  ? {
      'grpc.ssl_target_name_override': env.HM3_TLS_SERVER_NAME,
      'grpc.default_authority': env.HM3_TLS_SERVER_NAME,
    }
  : {};
try {
  const status = await checkHealth(
    { address: `localhost:${port}`, ...(tls ? { tls } : {}), channelOptions },
    '',
    { deadlineMs: 4000 },
  );
  if (status !== 'SERVING') {
    console.error(`health: ${status}`);
    process.exit(1);
  }
} catch (error) {
  console.error(`health: ${error instanceof Error ? error.message : String(error)}`);
  process.exit(1);
}
