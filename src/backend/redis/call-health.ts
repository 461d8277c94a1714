import { performance } from 'node:perf_hooks';
import type { StoreHealth } from '../resilience/circuit-breaker.js';

/**
 * What the Redis backend saw of its own script calls, per call (never per request): whether the
 * connection is up, how many calls in a row failed, and for how long calls have been waiting
 * without any reply at all. The circuit breaker reads it to tell a dead or hung Redis from a
 * busy one (see `StoreHealth`):
 *
 * - a call that times out is not a failure here: its reply usually comes later (a busy machine
 *   or a starved Redis), and a late reply is proof of life. Only silence is: calls written and
 *   no reply at all, on time or late, for `silentFor` ms (a SIGSTOPped or hung Redis);
 * - a call that fails (connection lost or refused, CLUSTERDOWN, LOADING, ...) is one failure
 *   however many requests it carried; a reply of any kind resets the count;
 * - a Redis error reply (even WRONGTYPE) is a reply: the server is alive.
 *
 * Cost: two counters and a clock read per call (a call carries a whole event-loop turn's
 * requests), nothing per request.
 */
export class CallHealth implements StoreHealth {
  private unanswered = 0;
  /** When the oldest call now waiting was written (the count went from 0 to 1). */
  private waitingSince = 0;
  private lastReplyAt = Number.NEGATIVE_INFINITY;
  private failedInARow = 0;
  private up = false;
  private everUp = false;

  constructor(private readonly clock: () => number = () => performance.now()) {}

  /** A script call was handed to the connection. */
  written(): void {
    if (this.unanswered++ === 0) this.waitingSince = this.clock();
  }

  /** A call got its reply (late or not, success or a Redis error reply). `failed`: a reply that means "not now" (LOADING, CLUSTERDOWN, ...). */
  replied(failed: boolean): void {
    this.lastReplyAt = this.clock();
    if (this.unanswered > 0) this.unanswered--;
    this.failedInARow = failed ? this.failedInARow + 1 : 0;
  }

  /** A call ended without a reply (the connection dropped or refused it). */
  dropped(): void {
    if (this.unanswered > 0) this.unanswered--;
    this.failedInARow++;
  }

  /** The connection became ready (true) or stopped being ready (false). */
  connection(up: boolean): void {
    this.up = up;
    if (up) this.everUp = true;
    // Calls on a dropped connection are failed by the client; nothing waits on it any more.
    if (!up) this.unanswered = 0;
  }

  lost(): boolean {
    return this.everUp && !this.up;
  }

  consecutiveFailures(): number {
    return this.failedInARow;
  }

  silentFor(now: number): number {
    return this.unanswered === 0 ? 0 : Math.max(0, now - Math.max(this.waitingSince, this.lastReplyAt));
  }

  /**
   * Tracks one call's reply promise (the client's own, not the deadline-guarded one, so a late
   * reply still counts). `classify` tells a rejection that is a Redis error reply (`reply`, or
   * `failed_reply` for the "not now" ones) from one without a reply (`dropped`).
   */
  track<T>(reply: Promise<T>, classify: (err: unknown) => ReplyKind): Promise<T> {
    this.written();
    reply.then(
      () => this.replied(false),
      (err: unknown) => {
        const kind = classify(err);
        if (kind === 'dropped') this.dropped();
        else this.replied(kind === 'failed_reply');
      },
    );
    return reply;
  }
}

/** What a rejected call was: a Redis error reply (alive), a "not now" reply (alive, failing), or no reply. */
export type ReplyKind = 'reply' | 'failed_reply' | 'dropped';
