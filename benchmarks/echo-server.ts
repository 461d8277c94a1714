/**
 * The baseline: a bare grpc-js server for `envoy.service.ratelimit.v3.RateLimitService` that
 * decodes each request and encodes each answer exactly as meshlimit does (the same proto files
 * and the same hand-written codec, `withHandWrittenCodec`), answering a fixed, prebuilt
 * RateLimitResponse (OK, one status per request descriptor, so the response has
 * the size meshlimit's would). No limiter, no backend, no metrics: what is left is the cost of
 * grpc-js + HTTP/2 + protobuf, the floor any Node.js RLS pays. The harness quotes meshlimit as a
 * ratio of this server's throughput measured in the same run on the same core.
 *
 * Errors: the handler never fails, so every call that reaches it is answered grpc-status 0. A
 * frame grpc-js cannot decode never reaches it; the harness therefore compares the handler's
 * call count (`GET /count` on the stats port) with h2load's count of completed requests.
 *
 * TLS (the benchmark's TLS phase): with ECHO_TLS_CERT and ECHO_TLS_KEY (PEM files) it serves over
 * TLS with grpc-js's plain `ServerCredentials.createSsl`, the floor for meshlimit's TLS port (which
 * adds its certificate watcher and certificate-provider credentials, both off the request path).
 *
 * Run: node --import tsx benchmarks/echo-server.ts  (env GRPC_PORT, STATS_PORT; 0 = pick one).
 * Prints one line `READY <grpcPort> <statsPort>` when serving.
 */
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import * as grpc from '@grpc/grpc-js';
import { loadServerPackage, RLS_SERVICE, serviceDefinition } from '../src/server/grpc/protos.js';
import { DEFAULT_SERVER_OPTIONS, withHandWrittenCodec } from '../src/server/grpc/server.js';
import { DEFAULT_TRANSPORT_LIMITS, transportServerOptions } from '../src/server/grpc/transport-guard.js';

interface EchoRequest {
  descriptors: unknown[];
}

const MAX_DESCRIPTORS = 64;
const status = {
  code: 1,
  currentLimit: { name: '', requestsPerUnit: 1_000_000, unit: 1 },
  limitRemaining: 999_999,
  durationUntilReset: { seconds: 1, nanos: 0 },
  quota: null,
};
// Prebuilt responses, one per descriptor count: the handler only picks one.
const responses = Array.from({ length: MAX_DESCRIPTORS + 1 }, (_, n) => ({
  overallCode: 1,
  statuses: Array.from({ length: Math.max(1, n) }, () => status),
  responseHeadersToAdd: [],
  requestHeadersToAdd: [],
}));

let calls = 0;
// meshlimit's grpc-js options, its transport limits' included (not its transport guard, which is
// meshlimit's own work and counted against it, like the limiter).
const server = new grpc.Server({ ...DEFAULT_SERVER_OPTIONS, ...transportServerOptions(DEFAULT_TRANSPORT_LIMITS) });
server.addService(withHandWrittenCodec(serviceDefinition(loadServerPackage(), RLS_SERVICE)), {
  ShouldRateLimit(call: grpc.ServerUnaryCall<EchoRequest, unknown>, callback: grpc.sendUnaryData<unknown>) {
    calls++;
    callback(null, responses[Math.min(call.request.descriptors.length, MAX_DESCRIPTORS)]);
  },
});

const grpcPort = Number(process.env['GRPC_PORT'] ?? '0');
const statsPort = Number(process.env['STATS_PORT'] ?? '0');
const stats = createServer((req, res) => {
  res.setHeader('content-type', 'application/json');
  res.end(JSON.stringify({ calls }));
});

const certFile = process.env['ECHO_TLS_CERT'];
const keyFile = process.env['ECHO_TLS_KEY'];
const credentials =
  certFile === undefined || keyFile === undefined
    ? grpc.ServerCredentials.createInsecure()
    : grpc.ServerCredentials.createSsl(null, [{ cert_chain: readFileSync(certFile), private_key: readFileSync(keyFile) }], false);

server.bindAsync(`127.0.0.1:${grpcPort}`, credentials, (err, port) => {
  if (err) {
    process.stderr.write(`echo-server: ${err.message}\n`);
    process.exit(1);
  }
  stats.listen(statsPort, '127.0.0.1', () => {
    const addr = stats.address();
    process.stdout.write(`READY ${port} ${typeof addr === 'object' && addr ? addr.port : 0}\n`);
  });
});

const stop = (): void => {
  stats.close();
  server.tryShutdown(() => process.exit(0));
};
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
