import { Counter, type Registry } from 'prom-client';

/** Part of metrics.ts's declarations (split for its length): the gRPC port's transport and TLS counters. */
type Child = { inc(value?: number): void };

/**
 * What the gRPC transport guard (src/server/grpc/transport-guard.ts) did against a client:
 * refused a connection (GRPC_MAX_CONNECTIONS) or a stream (GRPC_MAX_OPEN_STREAMS), reset a stream
 * (GRPC_STREAM_TIMEOUT_MS), closed one with GOAWAY ENHANCE_YOUR_CALM, or lacking GRPC_CLIENT_TLS_SAN.
 */
const GUARD_ACTIONS = ['connection_refused', 'stream_refused', 'stream_timeout', 'too_many_pings', 'too_many_resets'] as const;
export const TRANSPORT_ACTIONS = [...GUARD_ACTIONS, 'san_refused'] as const;
export type TransportAction = (typeof TRANSPORT_ACTIONS)[number];

export const TRANSPORT_METRIC_NAMES = [
  'meshlimit_grpc_transport_actions_total',
  'meshlimit_grpc_tls_reloads_total',
  'meshlimit_admin_tls_reloads_total',
] as const;

export interface TransportMetrics {
  transportAction(action: TransportAction): void;
  /** A changed set of TLS files of the gRPC port (`grpc`) or the HTTP port (`admin`, ADMIN_TLS_*). */
  tlsReload(result: 'applied' | 'rejected', listener?: 'grpc' | 'admin'): void;
}

/** The gRPC transport guard's actions: a client's abuse (or a limit set too low), never a normal call. */
export function transportMetrics(registry: Registry): TransportMetrics {
  const labelled = <K extends string>(name: string, help: string, label: string, keys: readonly K[]): Record<K, Child> => {
    const c = new Counter({ name, help, labelNames: [label], registers: [registry] });
    const children = {} as Record<K, Child>;
    for (const k of keys) {
      children[k] = c.labels(k) as Child;
      children[k].inc(0);
    }
    return children;
  };
  const actionsHelp = `Actions the gRPC transport guard took against clients: ${TRANSPORT_ACTIONS.join(', ')}.`;
  const actions = labelled('meshlimit_grpc_transport_actions_total', actionsHelp, 'action', TRANSPORT_ACTIONS);
  const reloadsHelp = 'Changed TLS files of the gRPC port: applied, or rejected (the previous certificate stays in use).';
  const reloads = {
    grpc: labelled('meshlimit_grpc_tls_reloads_total', reloadsHelp, 'outcome', ['applied', 'rejected'] as const),
    admin: labelled(
      'meshlimit_admin_tls_reloads_total',
      'Changed TLS files of the HTTP port (ADMIN_TLS_*): applied, or rejected (the previous certificate stays in use).',
      'outcome',
      ['applied', 'rejected'] as const,
    ),
  };
  return { transportAction: (action) => actions[action].inc(), tlsReload: (result, listener = 'grpc') => reloads[listener][result].inc() };
}
