import { describe, expect, it } from 'vitest';
import { loadSettings, redactedSettings } from '../../../src/settings/index.js';

/**
 * CONFIG_TYPE, FORCE_START_WITHOUT_INITIAL_CONFIG and the xDS client's settings: upstream's names,
 * defaults and formats (envoyproxy/ratelimit src/settings/settings.go), stricter where upstream
 * silently drops what it cannot use.
 */

/** The environment Envoy Gateway gives its rate-limit deployment (internal/infrastructure/kubernetes/ratelimit/resource.go). */
const ENVOY_GATEWAY_ENV = {
  RUNTIME_ROOT: '/data',
  RUNTIME_SUBDIRECTORY: 'ratelimit',
  RUNTIME_IGNOREDOTFILES: 'true',
  RUNTIME_WATCH_ROOT: 'false',
  LOG_LEVEL: 'info',
  USE_STATSD: 'false',
  CONFIG_TYPE: 'GRPC_XDS_SOTW',
  CONFIG_GRPC_XDS_SERVER_URL: 'envoy-gateway:18001',
  CONFIG_GRPC_XDS_NODE_ID: 'envoy-ratelimit',
  CONFIG_GRPC_XDS_SERVER_USE_TLS: 'true',
  CONFIG_GRPC_XDS_CLIENT_TLS_CERT: '/certs/tls.crt',
  CONFIG_GRPC_XDS_CLIENT_TLS_KEY: '/certs/tls.key',
  CONFIG_GRPC_XDS_SERVER_TLS_CACERT: '/certs/ca.crt',
  FORCE_START_WITHOUT_INITIAL_CONFIG: 'true',
};

describe('xDS settings', () => {
  it("loads Envoy Gateway's environment for its rate-limit deployment", () => {
    const s = loadSettings(ENVOY_GATEWAY_ENV);
    expect(s.config).toMatchObject({ type: 'GRPC_XDS_SOTW', forceStartWithoutInitialConfig: true });
    expect(s.xds).toEqual({
      serverUrl: 'envoy-gateway:18001',
      node: { id: 'envoy-ratelimit', metadata: {} },
      headers: {},
      connectRetryMs: 3000,
      backoff: { initialMs: 10_000, maxMs: 60_000, factor: 0.5, jitter: true },
      maxReceiveMessageBytes: undefined,
      tls: { caFile: '/certs/ca.crt', certFile: '/certs/tls.crt', keyFile: '/certs/tls.key', serverName: undefined },
    });
  });

  it('CONFIG_TYPE is FILE or GRPC_XDS_SOTW, any case', () => {
    expect(loadSettings({}).config.type).toBe('FILE');
    expect(loadSettings({ CONFIG_TYPE: 'grpc_xds_sotw' }).config.type).toBe('GRPC_XDS_SOTW');
    expect(() => loadSettings({ CONFIG_TYPE: 'GRPC_XDS_DELTA' })).toThrow(
      'setting CONFIG_TYPE: expected FILE or GRPC_XDS_SOTW, got "GRPC_XDS_DELTA"',
    );
  });

  it('reads Go durations, as upstream does', () => {
    const s = loadSettings({
      CONFIG_GRPC_XDS_SERVER_CONNECT_RETRY_INTERVAL: '1.5s',
      XDS_CLIENT_BACKOFF_INITIAL_INTERVAL: '250ms',
      XDS_CLIENT_BACKOFF_MAX_INTERVAL: '1m30s',
      XDS_CLIENT_BACKOFF_RANDOM_FACTOR: '2',
      XDS_CLIENT_BACKOFF_JITTER: 'false',
    });
    expect(s.xds.connectRetryMs).toBe(1500);
    expect(s.xds.backoff).toEqual({ initialMs: 250, maxMs: 90_000, factor: 2, jitter: false });
    expect(() => loadSettings({ CONFIG_GRPC_XDS_SERVER_CONNECT_RETRY_INTERVAL: '3' })).toThrow(
      /^setting CONFIG_GRPC_XDS_SERVER_CONNECT_RETRY_INTERVAL: expected a duration such as 500ms, 30s or 1h30m/,
    );
    expect(() => loadSettings({ CONFIG_GRPC_XDS_SERVER_CONNECT_RETRY_INTERVAL: '2h' })).toThrow(
      'setting CONFIG_GRPC_XDS_SERVER_CONNECT_RETRY_INTERVAL: expected a duration from 10ms to 3600s, got "2h"',
    );
    expect(() => loadSettings({ XDS_CLIENT_BACKOFF_RANDOM_FACTOR: '-1' })).toThrow(/XDS_CLIENT_BACKOFF_RANDOM_FACTOR/);
    // Zero is upstream's (jpillora/backoff's) "use the default factor", 2.
    expect(loadSettings({ XDS_CLIENT_BACKOFF_RANDOM_FACTOR: '0' }).xds.backoff.factor).toBe(2);
  });

  it('node metadata: key=value pairs, and an item without = is an error', () => {
    expect(loadSettings({ CONFIG_GRPC_XDS_NODE_METADATA: 'zone=eu-1,role=rls=a' }).xds.node.metadata).toEqual({
      zone: 'eu-1',
      role: 'rls=a',
    });
    expect(() => loadSettings({ CONFIG_GRPC_XDS_NODE_METADATA: 'zone=eu-1,role:rls' })).toThrow(
      'setting CONFIG_GRPC_XDS_NODE_METADATA: expected key=value pairs separated by commas, got the item "role:rls"',
    );
  });

  it('extra headers: name:value pairs, lower-cased names, values never echoed or logged', () => {
    const s = loadSettings({ CONFIG_GRPC_XDS_CLIENT_ADDITIONAL_HEADERS: 'Authorization:Bearer s3cret,x-tenant:a:b' });
    expect(s.xds.headers).toEqual({ authorization: 'Bearer s3cret', 'x-tenant': 'a:b' });
    const logged = JSON.stringify(redactedSettings(s));
    expect(logged).not.toContain('s3cret');
    expect(logged).toContain('"authorization":"[REDACTED]"');
    let message = '';
    try {
      loadSettings({ CONFIG_GRPC_XDS_CLIENT_ADDITIONAL_HEADERS: 'x-token:s3cret\u0001' });
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message).toBe('setting CONFIG_GRPC_XDS_CLIENT_ADDITIONAL_HEADERS: the value of header "x-token" must be printable ASCII');
    expect(() => loadSettings({ CONFIG_GRPC_XDS_CLIENT_ADDITIONAL_HEADERS: 'x-data-bin:AAAA' })).toThrow(/not a usable gRPC metadata key/);
  });

  it('TLS: files need CONFIG_GRPC_XDS_SERVER_USE_TLS, a certificate needs its key', () => {
    expect(loadSettings({ CONFIG_GRPC_XDS_SERVER_USE_TLS: 'true' }).xds.tls).toEqual({
      caFile: undefined,
      certFile: undefined,
      keyFile: undefined,
      serverName: undefined,
    });
    expect(() => loadSettings({ CONFIG_GRPC_XDS_SERVER_TLS_CACERT: '/ca.pem' })).toThrow(
      'setting CONFIG_GRPC_XDS_SERVER_TLS_CACERT: is set but CONFIG_GRPC_XDS_SERVER_USE_TLS is not true',
    );
    expect(() => loadSettings({ CONFIG_GRPC_XDS_SERVER_USE_TLS: 'true', CONFIG_GRPC_XDS_CLIENT_TLS_CERT: '/c.pem' })).toThrow(
      'setting CONFIG_GRPC_XDS_CLIENT_TLS_KEY: a client certificate needs both CONFIG_GRPC_XDS_CLIENT_TLS_CERT and CONFIG_GRPC_XDS_CLIENT_TLS_KEY',
    );
    const san = loadSettings({ CONFIG_GRPC_XDS_SERVER_USE_TLS: 'true', CONFIG_GRPC_XDS_SERVER_TLS_SAN: 'xds.internal' });
    expect(san.xds.tls?.serverName).toBe('xds.internal');
  });

  it('XDS_CLIENT_MAX_MSG_SIZE_IN_BYTES: unset is gRPC default, else a byte count', () => {
    expect(loadSettings({ XDS_CLIENT_MAX_MSG_SIZE_IN_BYTES: '16777216' }).xds.maxReceiveMessageBytes).toBe(16_777_216);
    expect(() => loadSettings({ XDS_CLIENT_MAX_MSG_SIZE_IN_BYTES: '4MB' })).toThrow(
      /XDS_CLIENT_MAX_MSG_SIZE_IN_BYTES: expected a number of bytes/,
    );
  });
});
