/**
 * What a Redis Cluster says about itself: `CLUSTER NODES` parsed into lines, the node record
 * the cluster harness hands out, and the health probe that start-up, restarts and failovers wait on.
 */
import { parseInfo, redisCommand } from './redis-admin.js';
import type { ProcessState } from './redis-process.js';

export const CLUSTER_SLOTS = 16_384;

/** One node as the cluster sees it, plus our process state. */
export interface ClusterNodeInfo {
  readonly host: string;
  readonly port: number;
  readonly id: string;
  readonly role: 'primary' | 'replica';
  /** For a replica, the id of the primary it follows; else null. */
  readonly primaryId: string | null;
  /** For a primary, the slot ranges it serves (inclusive); empty for replicas. */
  readonly slots: readonly (readonly [number, number])[];
  /** Cluster flags as reported (`master`, `slave`, `fail`, `fail?`, ...), without `myself`. */
  readonly flags: readonly string[];
  /** Our view of the process: running, frozen (SIGSTOP) or dead (killed). */
  readonly process: ProcessState;
  readonly pid: number | undefined;
}

/** One line of `CLUSTER NODES`. */
export interface NodesLine {
  readonly id: string;
  readonly port: number;
  readonly flags: readonly string[];
  readonly primaryId: string | null;
  readonly slots: readonly (readonly [number, number])[];
}

/** Parses `CLUSTER NODES` output (importing/migrating markers `[slot->-id]` are skipped). */
export function parseClusterNodes(text: string): NodesLine[] {
  const out: NodesLine[] = [];
  for (const line of text.split('\n')) {
    const parts = line.trim().split(' ');
    const [id, addr, flags, master] = parts;
    if (id === undefined || addr === undefined || flags === undefined || master === undefined) continue;
    const port = Number(/:(\d+)@/.exec(addr)?.[1]);
    const slots: [number, number][] = [];
    for (const s of parts.slice(8)) {
      if (s.startsWith('[')) continue;
      const [a, b] = s.split('-');
      slots.push([Number(a), Number(b ?? a)]);
    }
    out.push({ id, port, flags: flags.split(','), primaryId: master === '-' ? null : master, slots });
  }
  return out;
}

/** `CLUSTER NODES` as the node on `port` sees it. */
export async function viewFrom(port: number): Promise<NodesLine[]> {
  return parseClusterNodes(String(await redisCommand(port, ['CLUSTER', 'NODES'])));
}

/** True when `line` serves `slot`. */
export const servesSlot = (line: Pick<NodesLine, 'slots'>, slot: number): boolean => line.slots.some(([a, b]) => slot >= a && slot <= b);

/** Flagged as failing by the node that reported the line (`fail` or `fail?`). */
export const flaggedFailing = (line: Pick<NodesLine, 'flags'>): boolean => line.flags.some((f) => f === 'fail' || f === 'fail?');

/**
 * One probe of cluster health over the `running` nodes of a cluster of `knownNodes`: every one
 * says `cluster_state:ok`, knows every node, sees all 16384 slots assigned, reports the same slot
 * owners, flags no running node as failing; every running replica has `master_link_status:up`.
 * Returns true or what is wrong.
 */
export async function clusterHealth(running: readonly number[], knownNodes: number): Promise<true | string> {
  let signature: string | undefined;
  for (const port of running) {
    const info = parseInfo(String(await redisCommand(port, ['CLUSTER', 'INFO'], { timeoutMs: 1_000 })));
    if (info.get('cluster_state') !== 'ok') return `${port}: cluster_state:${info.get('cluster_state')}`;
    if (info.get('cluster_slots_assigned') !== String(CLUSTER_SLOTS)) {
      return `${port}: cluster_slots_assigned:${info.get('cluster_slots_assigned')}`;
    }
    if (info.get('cluster_known_nodes') !== String(knownNodes)) {
      return `${port}: cluster_known_nodes:${info.get('cluster_known_nodes')} of ${knownNodes}`;
    }
    const view = await viewFrom(port);
    const sig = slotOwners(view);
    if (signature !== undefined && sig !== signature) return `${port} sees slot owners [${sig}], another node [${signature}]`;
    signature = sig;
    const failing = view.filter((l) => running.includes(l.port) && flaggedFailing(l));
    if (failing.length > 0) return `${port} flags running node(s) ${failing.map((l) => l.port).join(',')} as failing`;
    const me = view.find((l) => l.flags.includes('myself'));
    if (me?.flags.includes('slave') === true) {
      const repl = parseInfo(String(await redisCommand(port, ['INFO', 'replication'], { timeoutMs: 1_000 })));
      if (repl.get('master_link_status') !== 'up') return `replica ${port}: master_link_status:${repl.get('master_link_status')}`;
    }
  }
  return true;
}

/** `port=a-b,c-d ...` over the lines that serve slots, sorted: equal on nodes that agree. */
function slotOwners(view: readonly NodesLine[]): string {
  return view
    .filter((l) => l.slots.length > 0)
    .map((l) => `${l.port}=${l.slots.map(([a, b]) => `${a}-${b}`).join(',')}`)
    .sort()
    .join(' ');
}
