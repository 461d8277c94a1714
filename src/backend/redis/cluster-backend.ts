import { Command, type Cluster } from 'ioredis';
import { BackendError, BackendUnavailableError, CancelledError } from '../../errors.js';
import type { Backend, StoredStates } from '../../limiter/ports.js';
import { readStatesCluster } from './read-states.js';
import type { CounterOp, CounterOutcome, EvaluateOptions, EvaluateResult } from '../../limiter/types.js';
import { validateOps } from '../../limiter/ops.js';
import { chargedOps } from '../../limiter/algorithms/refund.js';
import { defaultEvaluateScripts, defaultRefundScript } from './backend.js';
import { sendQueue, type QueuedRequest, type ScriptSender } from './batching.js';
import { createClusterClient, DEFAULT_COMMAND_TIMEOUT_MS, type RedisConnectionOptions } from './connection.js';
import { backstopTimeoutMs, WriteBatch } from './deadline.js';
import { CallHealth } from './call-health.js';
import { registerReservationScript, runReservation } from './reservation-script.js';
import { replyKind, toBackendError } from './errors.js';
import { notConnectedReason } from './explain.js';
import { ReadinessTracker, type RedisStateChange } from './readiness.js';
import type { AssembledScript, EvaluateScripts } from './lua-assembler.js';
import { evaluateScriptFor } from './script-commands.js';
import { marshalRefund, parseRefundReply } from './script-format.js';
import { keySlot } from './slot.js';

export interface RedisClusterBackendOptions extends RedisConnectionOptions {
  /** Called when the cluster client becomes ready or stops being ready (once per transition). */
  readonly onStateChange?: (change: RedisStateChange) => void;
  /**
   * Called when a refund (see {@link RedisClusterBackend}) failed; the request's answer is not
   * affected, its charge stays (under-admission until the window or bucket moves on). For a log
   * line or a counter; never throws into the request.
   */
  readonly onRefundError?: (error: BackendError | BackendUnavailableError) => void;
  /** The assembled evaluate scripts (default: read from lua/ once per process). */
  readonly scripts?: EvaluateScripts;
  /** The assembled refund script (default: read from lua/ once per process). */
  readonly refundScript?: AssembledScript;
}

/** Ops of one request that share a hash slot, with their positions in the request. */
interface SlotGroup {
  readonly slot: number;
  readonly indices: number[];
  readonly ops: CounterOp[];
}

/** Groups ops by hash slot, in order of first appearance; order inside a group is kept. */
export function groupBySlot(ops: readonly CounterOp[]): SlotGroup[] {
  const bySlot = new Map<number, SlotGroup>();
  for (let i = 0; i < ops.length; i++) {
    const op = ops[i]!;
    const slot = keySlot(op.key);
    let g = bySlot.get(slot);
    if (g === undefined) bySlot.set(slot, (g = { slot, indices: [], ops: [] }));
    g.indices.push(i);
    g.ops.push(op);
  }
  return [...bySlot.values()];
}

type Charged = { readonly group: SlotGroup; readonly result: EvaluateResult; readonly now: number };

/**
 * Errors that mean "the call was not run": a redirection reply, or ioredis refusing an
 * auto-pipelined batch whose slots the map (refreshed meanwhile) now puts on different nodes.
 * Safe to send again.
 */
const NOT_RUN = /^(?:MOVED|ASK|TRYAGAIN) |^All keys in the pipeline should belong to the same slots allocation group/;

/**
 * Counters in a Redis Cluster (REDIS_TYPE=cluster).
 *
 * A script may only touch keys of one hash slot, and keys.ts gives every key of one descriptor
 * the same `{tag}`, so a request is split into one script call per slot it touches (usually one
 * per descriptor). All calls of a request are issued in the same event-loop tick; with ioredis
 * auto-pipelining the calls (of this and concurrent requests) bound for one node leave as one
 * write, so a request costs one round trip per node, in parallel, never one per descriptor in
 * series. A request whose ops share a slot is exact like standalone Redis. Calls are batched
 * like there: the slot groups of every request of one event-loop turn that fall on one slot share
 * one script call (lua/evaluate-batch.lua, see `flush`), whose reply also gives the time each
 * group's charge ran at, for refunds.
 *
 * Denied requests consume nothing, across slots: every group is evaluated and charged at once
 * (each group alone is atomic and exact); when any group denies the request (and chargeOnDeny is
 * off), or a group failed, each group that charged is refunded with lua/refund.lua, using the
 * `now` its charge ran at. Best effort by design (the price of not holding a lock across nodes):
 * - between charge and refund other requests see the charge, so the service can briefly
 *   under-admit; a refund never gives back more than the charge still holds, so it never
 *   over-admits (see AlgorithmMath.refund);
 * - a refund that fails (timeout, failover) leaves the charge: under-admission until the window or
 *   bucket moves on; `onRefundError` reports it;
 * - a denied multi-slot request costs a second round trip (the refund), awaited before the
 *   answer so that a follow-up request sees the refunded counters.
 *
 * Redirections: MOVED and ASK are followed by ioredis. An auto-pipelined batch in which only some
 * calls were redirected is not retried by ioredis; such a call (MOVED, ASK or TRYAGAIN: it did not
 * run), or one of a batch ioredis refused because the slot map changed under it, is sent again
 * once on its own, where ioredis follows redirections and retries TRYAGAIN (bounded, see
 * clusterPlan). NOSCRIPT (a flushed or fresh node) falls back to EVAL once. Nothing
 * that may have run is ever resent: a connection closed mid-call, CLUSTERDOWN and timeouts are
 * BackendUnavailableError (gRPC UNAVAILABLE). As on standalone Redis, a call that timed out may
 * still run later (its hits then count although the request got UNAVAILABLE).
 */
export class RedisClusterBackend implements Backend {
  readonly kind = 'redis';
  readonly redisType = 'cluster' as const;
  readonly client: Cluster;
  private readonly scripts: EvaluateScripts;
  private readonly refundScript: AssembledScript;
  private readonly onRefundError: ((error: BackendError | BackendUnavailableError) => void) | undefined;
  private readonly readiness: ReadinessTracker;
  /** What this backend saw of its script calls, over all nodes, for the circuit breaker (per call, never per request). */
  readonly health = new CallHealth();
  private readonly deadlineMs: number;
  /** How messages name this Redis (RedisConnectionOptions.label). */
  private readonly label: string | undefined;
  private closing = false;

  constructor(options: RedisClusterBackendOptions) {
    this.deadlineMs = 2 * (options.commandTimeoutMs ?? DEFAULT_COMMAND_TIMEOUT_MS);
    this.label = options.label;
    this.scripts = options.scripts ?? defaultEvaluateScripts();
    this.refundScript = options.refundScript ?? defaultRefundScript();
    this.onRefundError = options.onRefundError;
    // Calls get their deadline from `call`; ioredis' per-command timer is only a backstop.
    this.client = createClusterClient({ ...options, commandTimeoutMs: backstopTimeoutMs(this.deadlineMs) });
    registerReservationScript(this.client);
    this.readiness = new ReadinessTracker(this.client, (change) => {
      this.health.connection(change.ready);
      if (change.ready) void this.warmUp();
      options.onStateChange?.(change);
    });
  }

  /**
   * Opens the connection to every primary and loads the scripts there, as soon as the cluster
   * client is ready. ioredis opens a node's connection on the first command for it; under a burst
   * that first command then waits behind a connection handshake, a ready check and a NOSCRIPT
   * round trip, each one a turn of a busy event loop (measured: 0.4 to 2 s with 4,096 requests
   * arriving at once), long enough to look like a hung node. Best effort: a node that is not
   * reachable now is connected on first use, as before.
   */
  private async warmUp(): Promise<void> {
    const sources = [this.scripts.multi, this.scripts.batch, ...Object.values(this.scripts.one), this.refundScript].map((sc) => sc.source);
    await Promise.allSettled(
      this.client.nodes('master').map(async (node) => {
        for (const source of sources) await node.script('LOAD', source);
      }),
    );
  }

  /** Counters read with GET only (explain; see ./read-states.ts). Not tracked in `health`: an admin read must not move the breaker. */
  readStates(keys: readonly string[], now?: number): Promise<StoredStates> {
    return readStatesCluster(this.client, keys, now);
  }

  async evaluate(ops: readonly CounterOp[], options: EvaluateOptions): Promise<EvaluateResult> {
    if (ops.length === 0) return { denied: false, outcomes: [] };
    validateOps(ops);
    // Not ready (starting, reconnecting after losing every node, closed): fail now. ioredis would
    // otherwise hold an auto-pipelined call until the cluster is ready, however long that takes.
    if (!this.isReady()) throw this.unavailable();
    if (options.reservation !== undefined) {
      // A reservation rule's call: one op, its two keys in one slot (./reservation-script.ts).
      const batch = new WriteBatch(this.deadlineMs, noAnswer);
      const reply = batch.guard(this.health.track(runReservation(this.client, ops[0]!, options.reservation, options.now), replyKind));
      batch.written();
      return reply.catch((err: unknown) => {
        throw toBackendError(err);
      });
    }
    const now = options.now === undefined ? undefined : Math.floor(options.now);
    const groups = groupBySlot(ops);
    if (groups.length === 1) {
      // One slot: exact, in one call with the turn's other slot groups on that slot.
      const group = groups[0]!;
      return new Promise<EvaluateResult>((resolve, reject) => {
        const base = { ops, now, chargeOnDeny: options.chargeOnDeny, cancellation: options.cancellation };
        if (options.refundable !== true) this.enqueue(group.slot, { ...base, resolve, reject });
        else {
          const done = (result: EvaluateResult, at: number): void => resolve(this.withRefund([{ group, result, now: at }], result));
          this.enqueue(group.slot, { ...base, needsNow: true, resolve: done, reject });
        }
      });
    }
    // Every group joins its slot's queue for this turn, with the time its charge runs at (which a
    // refund needs); the turn's calls for one node then leave together.
    const settled = await Promise.allSettled(
      groups.map(
        (group) =>
          new Promise<Charged>((resolve, reject) => {
            const done = (result: EvaluateResult, at: number): void => resolve({ group, result, now: at });
            // One probe for every group: all of them are queued now and sent in the same flush, so
            // a cancelled request drops all of its groups or none.
            const { chargeOnDeny, cancellation } = options;
            this.enqueue(group.slot, { ops: group.ops, now, chargeOnDeny, cancellation, needsNow: true, resolve: done, reject });
          }),
      ),
    );
    const outcomes = new Array<CounterOutcome>(ops.length);
    let denied = false;
    let failure: BackendError | BackendUnavailableError | CancelledError | undefined;
    const charged: Charged[] = [];
    for (const s of settled) {
      if (s.status === 'rejected') {
        const err = s.reason instanceof CancelledError ? s.reason : toBackendError(s.reason);
        // A non-transient error is a bug: it wins over "unavailable" so that it surfaces.
        if (failure === undefined || (failure instanceof BackendUnavailableError && err instanceof BackendError)) failure = err;
        continue;
      }
      const { group, result } = s.value;
      if (result.denied) denied = true;
      else charged.push(s.value);
      group.indices.forEach((index, k) => (outcomes[index] = result.outcomes[k]!));
    }
    if ((denied || failure !== undefined) && !options.chargeOnDeny) await this.refund(charged);
    if (failure !== undefined) throw failure;
    return options.refundable === true ? this.withRefund(charged, { denied, outcomes }) : { denied, outcomes };
  }

  /**
   * `result` with a handle that gives back what `charged` charged (EvaluateOptions.refundable),
   * when the request was admitted and charged anything.
   */
  private withRefund(charged: readonly Charged[], result: EvaluateResult): EvaluateResult {
    if (result.denied || !charged.some((c) => chargedOps(c.group.ops, c.result).length > 0)) return result;
    return { ...result, refund: () => this.refund(charged) };
  }

  /**
   * The slot groups of this event-loop turn's requests, by slot: each slot's groups go out in one
   * script call (lua/evaluate-batch.lua; a group alone runs the one-op script, or lua/evaluate.lua
   * when it has several ops or belongs to a request spanning several slots, whose refund needs
   * the `now` that script returns), as on standalone Redis (see RedisBackend.flush). A hot key's
   * requests then cost its node one call per turn, and every call of the turn still leaves
   * through auto-pipelining, one write per node.
   */
  private queues = new Map<number, QueuedRequest[]>();
  private enqueue(slot: number, queued: QueuedRequest): void {
    const q = this.queues.get(slot);
    if (q !== undefined) q.push(queued);
    else if (this.queues.set(slot, [queued]).size === 1) setImmediate(this.flush);
  }
  private readonly flush = (): void => {
    const queues = this.queues;
    this.queues = new Map();
    for (const queue of queues.values()) sendQueue(queue, this.sender);
  };
  private readonly sender: ScriptSender = {
    alone: (request, keys, args, several) => this.call(evaluateScriptFor(this.scripts, request.ops, several), keys, [args]),
    batch: (keys, args) => this.call(this.scripts.batch, keys, [args]),
  };

  /** Gives back what each admitted group charged (ops not over, hits > 0), all groups in parallel. */
  private async refund(charged: readonly Charged[]): Promise<void> {
    const calls: Promise<unknown>[] = [];
    for (const { group, result, now } of charged) {
      const ops = chargedOps(group.ops, result);
      if (ops.length === 0) continue;
      const { keys, argv } = marshalRefund(ops, now);
      calls.push(
        this.call(this.refundScript, keys, argv)
          .then(parseRefundReply)
          .catch((err: unknown) => {
            try {
              this.onRefundError?.(toBackendError(err));
            } catch {
              // a reporting hook must never fail the request
            }
          }),
      );
    }
    await Promise.all(calls);
  }

  /**
   * One script call, answered or failed within 2 x the command timeout counted from the write
   * of its turn's calls (WriteBatch in ./deadline.ts, as on standalone Redis): ioredis'
   * auto-pipeline writes in a `setImmediate`, and the batch's own `setImmediate`, queued after
   * it, starts the clock. The deadline also covers a call waiting in the cluster client's queue
   * for the client to be ready again (a race with our readiness check; such a call may still run
   * later, like any timed-out call), plus one resend. ioredis' per-command timer is only a
   * backstop here (backstopTimeoutMs, see the constructor).
   */
  private call(script: AssembledScript, keys: string[], argv: Array<string | Buffer>): Promise<unknown> {
    const first = this.batch === undefined;
    const batch = (this.batch ??= new WriteBatch(this.deadlineMs, noAnswer));
    // send() hands the call to ioredis synchronously, which queues its flush first.
    const reply = batch.guard(this.health.track(this.send(script, keys, argv), replyKind));
    if (first) setImmediate(this.written, batch);
    return reply;
  }

  private batch: WriteBatch | undefined;
  private readonly written = (batch: WriteBatch): void => {
    this.batch = undefined;
    batch.written();
  };

  /**
   * EVALSHA through auto-pipelining; once more on its own after a redirection the batch could not
   * follow (ioredis then follows MOVED/ASK and retries TRYAGAIN itself); once more as EVAL after
   * NOSCRIPT. At most three sends, each of which provably did not run before.
   */
  private async send(script: AssembledScript, keys: string[], argv: Array<string | Buffer>): Promise<unknown> {
    let useEval = false;
    let direct = false;
    for (;;) {
      try {
        const head = useEval ? script.source : script.sha1;
        if (!direct) {
          return await (useEval
            ? this.client.eval(head, keys.length, ...keys, ...argv)
            : this.client.evalsha(head, keys.length, ...keys, ...argv));
        }
        const command = new Command(useEval ? 'eval' : 'evalsha', [head, keys.length, ...keys, ...argv], { replyEncoding: 'utf8' });
        return await this.client.sendCommand(command);
      } catch (err) {
        const message = err instanceof Error ? err.message : '';
        if (!useEval && message.startsWith('NOSCRIPT')) useEval = true;
        else if (!direct && NOT_RUN.test(message)) direct = true;
        else throw toBackendError(err);
      }
    }
  }

  private unavailable(): BackendUnavailableError {
    if (this.closing) return new BackendUnavailableError('redis cluster backend is closed');
    const why = notConnectedReason(this.label ?? 'Redis cluster', this.readiness.lastError);
    return new BackendUnavailableError(`${why} (detail: cluster client status ${this.client.status})`, { cause: this.readiness.lastError });
  }

  /** DEL of one descriptor's counters (one hash tag, so one slot on a cluster). */
  async deleteKeys(keys: readonly string[]): Promise<number> {
    if (keys.length === 0) return 0;
    try {
      return await this.client.del(...keys);
    } catch (err) {
      throw toBackendError(err);
    }
  }

  /** Why the cluster is not usable (which one, what failed, what to check); undefined when it is. */
  whyNotConnected(): string | undefined {
    return this.isReady() ? undefined : notConnectedReason(this.label ?? 'Redis cluster', this.readiness.lastError);
  }

  /** The cluster client is ready: connected, slot map loaded, CLUSTER INFO state ok at connect. */
  isReady(): boolean {
    return !this.closing && this.client.status === 'ready';
  }

  /** Resolves once the cluster client is ready; rejects with BackendUnavailableError after `timeoutMs`. */
  waitReady(timeoutMs = 5_000): Promise<void> {
    return this.readiness.waitReady(timeoutMs, 'redis cluster');
  }

  /** QUIT on every node (lets in-flight replies arrive), or drops the sockets. Idempotent. */
  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    if (this.client.status === 'end') return;
    if (this.client.status !== 'ready') {
      this.client.disconnect();
      return;
    }
    try {
      await this.client.quit();
    } catch {
      this.client.disconnect();
    }
  }
}

const noAnswer = (ms: number): BackendUnavailableError => new BackendUnavailableError(`redis cluster: no answer within ${ms} ms`);
