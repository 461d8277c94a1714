import { SettingsError } from '../errors.js';
import { goDuration, InvalidValue, parseBool, setting, text } from './spec.js';

/**
 * The rows of the settings table (./table.ts) that choose and configure the config source:
 * `CONFIG_TYPE`, `FORCE_START_WITHOUT_INITIAL_CONFIG`, and the xDS client's settings. Names,
 * defaults and formats are envoyproxy/ratelimit's (src/settings/settings.go), which Envoy Gateway
 * sets for the rate-limit deployment it runs; where meshlimit is stricter (it rejects what
 * upstream would silently drop), the description says so.
 */

export const CONFIG_TYPES = ['FILE', 'GRPC_XDS_SOTW'] as const;
export type ConfigType = (typeof CONFIG_TYPES)[number];

function configType(raw: string): ConfigType {
  const v = raw.trim().toUpperCase();
  const found = CONFIG_TYPES.find((t) => t === v);
  if (found === undefined) throw new InvalidValue(`expected ${CONFIG_TYPES.join(' or ')}, got ${JSON.stringify(raw)}`);
  return found;
}

/**
 * `CONFIG_GRPC_XDS_NODE_METADATA`: `key=value` pairs separated by commas, the value split at the
 * first `=` (upstream's format). Upstream skips an item without `=`; here it is an error.
 */
export function nodeMetadata(raw: string): Readonly<Record<string, string>> {
  const out: Record<string, string> = {};
  if (raw.trim() === '') return out;
  for (const item of raw.split(',')) {
    const eq = item.indexOf('=');
    if (eq <= 0) throw new InvalidValue(`expected key=value pairs separated by commas, got the item ${JSON.stringify(item)}`);
    out[item.slice(0, eq)] = item.slice(eq + 1);
  }
  return out;
}

/**
 * `CONFIG_GRPC_XDS_CLIENT_ADDITIONAL_HEADERS`: `name:value` pairs separated by commas (upstream's
 * envconfig map format), the value split at the first `:`. Names are gRPC metadata keys
 * (lower-cased; letters, digits, `-`, `_`, `.`; no `-bin`), values printable ASCII. Never echoes
 * a value (they may be credentials).
 */
export function headerMap(raw: string): Readonly<Record<string, string>> {
  const out: Record<string, string> = {};
  if (raw.trim() === '') return out;
  raw.split(',').forEach((item, i) => {
    const colon = item.indexOf(':');
    if (colon <= 0) throw new InvalidValue(`expected name:value pairs separated by commas; item ${i + 1} has no name before ':'`);
    const name = item.slice(0, colon).trim().toLowerCase();
    const value = item.slice(colon + 1);
    if (!/^[0-9a-z_.-]+$/.test(name) || name.endsWith('-bin') || name.startsWith('grpc-')) {
      throw new InvalidValue(
        `header ${JSON.stringify(name)} is not a usable gRPC metadata key (letters, digits, '-', '_', '.'; no -bin, no grpc-)`,
      );
    }
    if (!/^[\x20-\x7e]*$/.test(value)) throw new InvalidValue(`the value of header ${JSON.stringify(name)} must be printable ASCII`);
    out[name] = value;
  });
  return out;
}

/** `CONFIG_GRPC_XDS_SERVER_URL`: a gRPC target such as `host:port`, `[v6]:port` or `dns:///host:port`. */
function grpcTarget(raw: string): string {
  const v = raw.trim();
  if (v === '' || /\s/.test(v)) throw new InvalidValue(`expected a gRPC target such as host:port, got ${JSON.stringify(raw)}`);
  return v;
}

/** A decimal factor (`XDS_CLIENT_BACKOFF_RANDOM_FACTOR`); 0 means upstream's fallback, 2. */
function factor(raw: string): number {
  const v = raw.trim();
  const n = /^\d+(\.\d+)?$/.test(v) ? Number(v) : Number.NaN;
  if (!Number.isFinite(n) || n > 100) throw new InvalidValue(`expected a number from 0 to 100, got ${JSON.stringify(raw)}`);
  return n === 0 ? 2 : n;
}

function byteCount(raw: string): number {
  const v = raw.trim();
  const n = /^\d+$/.test(v) ? Number(v) : Number.NaN;
  if (!Number.isSafeInteger(n) || n < 1024 || n > 2_147_483_647)
    throw new InvalidValue(`expected a number of bytes from 1024 to 2147483647, got ${JSON.stringify(raw)}`);
  return n;
}

const XDS_DESCRIPTION = 'With `CONFIG_TYPE=GRPC_XDS_SOTW`:';

/** The rows, in documentation order; spread into the table after the file config's rows. */
export const CONFIG_SOURCE_DEFS = {
  CONFIG_TYPE: setting({
    group: 'config',
    default: 'FILE',
    parse: configType,
    description:
      'Where the descriptor config comes from: `FILE` (the YAML directory, `CONFIG_DIR`) or `GRPC_XDS_SOTW` (pushed by an xDS management server such as Envoy Gateway, over ADS state of the world; `CONFIG_DIR` and `RUNTIME_*` are then not read). As in envoyproxy/ratelimit; any case is accepted.',
  }),
  FORCE_START_WITHOUT_INITIAL_CONFIG: setting({
    group: 'config',
    default: 'false',
    parse: parseBool,
    description:
      'With `GRPC_XDS_SOTW`: `false` keeps the service not ready (health `NOT_SERVING`, `/healthcheck` 500) and answers requests `UNAVAILABLE` (`ML_ERR_NO_CONFIG`) until the first valid config arrives; `true` is ready at once and answers from an empty config (every request `OK`, no limit) until then. Health says which while no config has arrived. Upstream does not listen at all until then without it. Not used with `FILE`, where an invalid directory stops start-up.',
  }),
  CONFIG_GRPC_XDS_SERVER_URL: setting({
    group: 'xds',
    default: 'localhost:18000',
    parse: grpcTarget,
    description: `${XDS_DESCRIPTION} the management server, a gRPC target (\`host:port\`, \`[v6]:port\`, \`dns:///host:port\`). Envoy Gateway sets \`envoy-gateway:18001\`.`,
  }),
  CONFIG_GRPC_XDS_NODE_ID: setting({
    group: 'xds',
    default: 'default',
    parse: text,
    description: `${XDS_DESCRIPTION} the node id sent to the management server, which keys its snapshots by it (Envoy Gateway: \`envoy-ratelimit\`).`,
  }),
  CONFIG_GRPC_XDS_NODE_METADATA: setting({
    group: 'xds',
    default: '',
    parse: nodeMetadata,
    description: `${XDS_DESCRIPTION} node metadata, \`key1=value1,key2=value2\` (string values). An item without \`=\` is an error (upstream drops it).`,
  }),
  CONFIG_GRPC_XDS_CLIENT_ADDITIONAL_HEADERS: setting({
    group: 'xds',
    default: '',
    parse: headerMap,
    secret: true,
    description: `${XDS_DESCRIPTION} extra request headers (gRPC metadata) on the stream, \`name1:value1,name2:value2\`, e.g. for authorization. Secret: never logged.`,
  }),
  CONFIG_GRPC_XDS_SERVER_CONNECT_RETRY_INTERVAL: setting({
    group: 'xds',
    default: '3s',
    parse: goDuration(10, 3_600_000),
    description: `${XDS_DESCRIPTION} while the management server cannot be reached, the wait between connection attempts, +-50% jitter (a Go duration: \`500ms\`, \`3s\`, \`1m\`).`,
  }),
  XDS_CLIENT_BACKOFF_INITIAL_INTERVAL: setting({
    group: 'xds',
    default: '10s',
    parse: goDuration(1, 3_600_000),
    description: `${XDS_DESCRIPTION} after a stream to the management server was lost, the first wait before reconnecting. The config in force stays until a new one arrives.`,
  }),
  XDS_CLIENT_BACKOFF_MAX_INTERVAL: setting({
    group: 'xds',
    default: '60s',
    parse: goDuration(1, 3_600_000),
    description: `${XDS_DESCRIPTION} the longest wait before reconnecting.`,
  }),
  XDS_CLIENT_BACKOFF_RANDOM_FACTOR: setting({
    group: 'xds',
    default: '0.5',
    parse: factor,
    description: `${XDS_DESCRIPTION} the multiplier of each further wait (upstream's meaning, despite the name): the n-th wait is initial x factor^n, at most the maximum, never below the initial interval, so the default 0.5 always waits the initial interval, as upstream; 2 doubles. The count restarts once a stream delivers a response.`,
  }),
  XDS_CLIENT_BACKOFF_JITTER: setting({
    group: 'xds',
    default: 'true',
    parse: parseBool,
    description: `${XDS_DESCRIPTION} pick each wait uniformly between the initial interval and the computed one.`,
  }),
  XDS_CLIENT_MAX_MSG_SIZE_IN_BYTES: setting({
    group: 'xds',
    default: undefined,
    parse: byteCount,
    description: `${XDS_DESCRIPTION} the largest DiscoveryResponse accepted, in bytes; unset: gRPC's default, 4 MiB.`,
  }),
  CONFIG_GRPC_XDS_SERVER_USE_TLS: setting({
    group: 'xds',
    default: 'false',
    parse: parseBool,
    description: `${XDS_DESCRIPTION} connect to the management server over TLS, verifying its certificate against the system roots and \`CONFIG_GRPC_XDS_SERVER_TLS_CACERT\`.`,
  }),
  CONFIG_GRPC_XDS_SERVER_TLS_CACERT: setting({
    group: 'xds',
    default: undefined,
    parse: text,
    description: `${XDS_DESCRIPTION} PEM file of the CA that signs the management server's certificate, added to the system roots (as upstream). Files are re-read on every connection attempt, so a rotated certificate is picked up.`,
  }),
  CONFIG_GRPC_XDS_CLIENT_TLS_CERT: setting({
    group: 'xds',
    default: undefined,
    parse: text,
    description: `${XDS_DESCRIPTION} PEM file of the client certificate presented to the management server (mTLS); needs \`CONFIG_GRPC_XDS_CLIENT_TLS_KEY\`.`,
  }),
  CONFIG_GRPC_XDS_CLIENT_TLS_KEY: setting({
    group: 'xds',
    default: undefined,
    parse: text,
    description: `${XDS_DESCRIPTION} PEM file of the client certificate's private key.`,
  }),
  CONFIG_GRPC_XDS_SERVER_TLS_SAN: setting({
    group: 'xds',
    default: undefined,
    parse: text,
    description: `${XDS_DESCRIPTION} the name the management server's certificate must carry, when it is not the host of \`CONFIG_GRPC_XDS_SERVER_URL\`. TLS settings without \`CONFIG_GRPC_XDS_SERVER_USE_TLS=true\` are an error (upstream ignores them).`,
  }),
} as const;

/** The xDS client's settings, composed from the rows above. */
export interface XdsSettings {
  readonly serverUrl: string;
  readonly node: { readonly id: string; readonly metadata: Readonly<Record<string, string>> };
  /** A secret: redacted by `redactedSettings`. */
  readonly headers: Readonly<Record<string, string>>;
  readonly connectRetryMs: number;
  readonly backoff: { readonly initialMs: number; readonly maxMs: number; readonly factor: number; readonly jitter: boolean };
  readonly maxReceiveMessageBytes: number | undefined;
  /** Undefined: plaintext. */
  readonly tls:
    | {
        readonly caFile: string | undefined;
        readonly certFile: string | undefined;
        readonly keyFile: string | undefined;
        readonly serverName: string | undefined;
      }
    | undefined;
}

/** The parsed rows {@link composeXds} needs. */
export interface XdsInputs {
  readonly CONFIG_GRPC_XDS_SERVER_URL: string;
  readonly CONFIG_GRPC_XDS_NODE_ID: string;
  readonly CONFIG_GRPC_XDS_NODE_METADATA: Readonly<Record<string, string>>;
  readonly CONFIG_GRPC_XDS_CLIENT_ADDITIONAL_HEADERS: Readonly<Record<string, string>>;
  readonly CONFIG_GRPC_XDS_SERVER_CONNECT_RETRY_INTERVAL: number;
  readonly XDS_CLIENT_BACKOFF_INITIAL_INTERVAL: number;
  readonly XDS_CLIENT_BACKOFF_MAX_INTERVAL: number;
  readonly XDS_CLIENT_BACKOFF_RANDOM_FACTOR: number;
  readonly XDS_CLIENT_BACKOFF_JITTER: boolean;
  readonly XDS_CLIENT_MAX_MSG_SIZE_IN_BYTES: number | undefined;
  readonly CONFIG_GRPC_XDS_SERVER_USE_TLS: boolean;
  readonly CONFIG_GRPC_XDS_SERVER_TLS_CACERT: string | undefined;
  readonly CONFIG_GRPC_XDS_CLIENT_TLS_CERT: string | undefined;
  readonly CONFIG_GRPC_XDS_CLIENT_TLS_KEY: string | undefined;
  readonly CONFIG_GRPC_XDS_SERVER_TLS_SAN: string | undefined;
}

const TLS_FILES = ['CONFIG_GRPC_XDS_SERVER_TLS_CACERT', 'CONFIG_GRPC_XDS_CLIENT_TLS_CERT', 'CONFIG_GRPC_XDS_CLIENT_TLS_KEY'] as const;

/** Combines the rows; pushes an error naming the variable for settings that contradict each other. */
export function composeXds(p: XdsInputs, errors: SettingsError[]): XdsSettings {
  const useTls = p.CONFIG_GRPC_XDS_SERVER_USE_TLS;
  if (!useTls) {
    for (const name of [...TLS_FILES, 'CONFIG_GRPC_XDS_SERVER_TLS_SAN'] as const) {
      if (p[name] !== undefined) errors.push(new SettingsError(name, 'is set but CONFIG_GRPC_XDS_SERVER_USE_TLS is not true'));
    }
  }
  if ((p.CONFIG_GRPC_XDS_CLIENT_TLS_CERT === undefined) !== (p.CONFIG_GRPC_XDS_CLIENT_TLS_KEY === undefined)) {
    const missing = p.CONFIG_GRPC_XDS_CLIENT_TLS_CERT === undefined ? 'CONFIG_GRPC_XDS_CLIENT_TLS_CERT' : 'CONFIG_GRPC_XDS_CLIENT_TLS_KEY';
    errors.push(
      new SettingsError(missing, 'a client certificate needs both CONFIG_GRPC_XDS_CLIENT_TLS_CERT and CONFIG_GRPC_XDS_CLIENT_TLS_KEY'),
    );
  }
  return {
    serverUrl: p.CONFIG_GRPC_XDS_SERVER_URL,
    node: { id: p.CONFIG_GRPC_XDS_NODE_ID, metadata: p.CONFIG_GRPC_XDS_NODE_METADATA },
    headers: p.CONFIG_GRPC_XDS_CLIENT_ADDITIONAL_HEADERS,
    connectRetryMs: p.CONFIG_GRPC_XDS_SERVER_CONNECT_RETRY_INTERVAL,
    backoff: {
      initialMs: p.XDS_CLIENT_BACKOFF_INITIAL_INTERVAL,
      maxMs: p.XDS_CLIENT_BACKOFF_MAX_INTERVAL,
      factor: p.XDS_CLIENT_BACKOFF_RANDOM_FACTOR,
      jitter: p.XDS_CLIENT_BACKOFF_JITTER,
    },
    maxReceiveMessageBytes: p.XDS_CLIENT_MAX_MSG_SIZE_IN_BYTES,
    tls: useTls
      ? {
          caFile: p.CONFIG_GRPC_XDS_SERVER_TLS_CACERT,
          certFile: p.CONFIG_GRPC_XDS_CLIENT_TLS_CERT,
          keyFile: p.CONFIG_GRPC_XDS_CLIENT_TLS_KEY,
          serverName: p.CONFIG_GRPC_XDS_SERVER_TLS_SAN,
        }
      : undefined,
  };
}
