/**
 * grpc.health.v1.Health (https://github.com/grpc/grpc/blob/master/doc/health-checking.md) for
 * the overall server ('') and the RLS service. Kubernetes gRPC probes and Envoy's gRPC health
 * checker call Check; Watch streams every change.
 */
import * as grpc from '@grpc/grpc-js';
import { RLS_SERVICE } from './protos.js';

/** `grpc.health.v1.HealthCheckResponse.ServingStatus`. */
export const ServingStatus = { UNKNOWN: 0, SERVING: 1, NOT_SERVING: 2, SERVICE_UNKNOWN: 3 } as const;
export type ServingStatus = (typeof ServingStatus)[keyof typeof ServingStatus];

/** Services reported by default: the server as a whole ('') and the RLS. */
export const HEALTH_SERVICES: readonly string[] = Object.freeze(['', RLS_SERVICE]);

/** grpc.health.v1 `List` refuses to answer for more services than this. */
const LIST_MAX = 100;

type Listener = (status: ServingStatus) => void;

/**
 * The serving status of each known service. Listeners hear transitions only (setting the same
 * status twice notifies nobody).
 */
export class HealthState {
  private readonly statuses = new Map<string, ServingStatus>();
  private readonly listeners = new Map<string, Set<Listener>>();

  /** @param serving initial status of {@link HEALTH_SERVICES}; NOT_SERVING by default until start-up completes. */
  constructor(serving = false) {
    for (const service of HEALTH_SERVICES) this.statuses.set(service, serving ? ServingStatus.SERVING : ServingStatus.NOT_SERVING);
  }

  /** Sets every known service (at least '' and the RLS) to SERVING or NOT_SERVING. */
  setServing(serving: boolean): void {
    for (const service of this.statuses.keys()) this.setStatus(service, serving);
  }

  /** Sets one service, registering it if unknown. */
  setStatus(service: string, serving: boolean): void {
    const next = serving ? ServingStatus.SERVING : ServingStatus.NOT_SERVING;
    if (this.statuses.get(service) === next) return;
    this.statuses.set(service, next);
    const set = this.listeners.get(service);
    if (set !== undefined) for (const listener of set) listener(next);
  }

  /** The status of `service`, or undefined when it is unknown. */
  status(service: string): ServingStatus | undefined {
    return this.statuses.get(service);
  }

  /** Whether the server as a whole ('') is SERVING. */
  isServing(): boolean {
    return this.statuses.get('') === ServingStatus.SERVING;
  }

  /** A snapshot of every known service. */
  entries(): [string, ServingStatus][] {
    return [...this.statuses];
  }

  /** Calls `listener` on each transition of `service` (known or not yet); returns the unsubscriber. */
  watch(service: string, listener: Listener): () => void {
    let set = this.listeners.get(service);
    if (set === undefined) this.listeners.set(service, (set = new Set()));
    set.add(listener);
    return () => {
      set.delete(listener);
      if (set.size === 0 && this.listeners.get(service) === set) this.listeners.delete(service);
    };
  }
}

interface HealthRequest {
  service: string;
}
interface HealthResponse {
  status: ServingStatus;
}

/** The Health implementation plus a hook that ends open Watch streams (for shutdown). */
export interface HealthService {
  readonly implementation: grpc.UntypedServiceImplementation;
  /** Ends every open Watch call with OK; tryShutdown would otherwise wait for them. */
  endWatches(): void;
}

export function createHealthService(state: HealthState): HealthService {
  const watches = new Set<() => void>();

  const Check: grpc.handleUnaryCall<HealthRequest, HealthResponse> = (call, callback) => {
    const status = state.status(call.request.service);
    if (status === undefined) {
      callback({ code: grpc.status.NOT_FOUND, details: `unknown service '${call.request.service}'` });
      return;
    }
    callback(null, { status });
  };

  const List: grpc.handleUnaryCall<Record<string, never>, { statuses: Record<string, HealthResponse> }> = (_call, callback) => {
    const entries = state.entries();
    if (entries.length > LIST_MAX) {
      callback({ code: grpc.status.RESOURCE_EXHAUSTED, details: `more than ${LIST_MAX} services` });
      return;
    }
    const statuses: Record<string, HealthResponse> = {};
    for (const [service, status] of entries) statuses[service] = { status };
    callback(null, { statuses });
  };

  const Watch: grpc.handleServerStreamingCall<HealthRequest, HealthResponse> = (call) => {
    const service = call.request.service;
    const send: Listener = (status) => {
      call.write({ status });
    };
    const unsubscribe = state.watch(service, send);
    let ended = false;
    const end = (): void => {
      if (ended) return;
      ended = true;
      unsubscribe();
      watches.delete(end);
      call.end();
    };
    watches.add(end);
    call.on('cancelled', end);
    call.on('error', end);
    send(state.status(service) ?? ServingStatus.SERVICE_UNKNOWN);
  };

  return {
    implementation: { Check, List, Watch },
    endWatches() {
      for (const end of [...watches]) end();
    },
  };
}
