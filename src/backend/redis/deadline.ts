import type { BackendUnavailableError } from '../../errors.js';

/**
 * The deadline of the Redis calls issued in one event-loop turn, shared by the standalone and
 * cluster backends: REDIS_COMMAND_TIMEOUT_MS counted from when the turn's calls are written,
 * not from when each was queued, and a reply that reached the socket before the deadline is
 * never a timeout. ioredis' own `commandTimeout` gets both wrong under load: its timer starts
 * when the command is queued (behind the rest of the turn's requests), and it fires in the
 * timers phase, before the poll phase reads replies already waiting in the socket, so a service
 * that is merely busy (a long event-loop turn, a descheduled process) failed requests that Redis
 * had answered in time. Here the timer fires, then a `setImmediate` (which runs after that turn's
 * poll phase) fails only the calls still without a reply. One timer per turn, cleared when the
 * last reply comes.
 *
 * Use: the first call of a turn creates the batch, every call of the turn goes through
 * {@link WriteBatch.guard}, and whoever writes the turn's calls (a `setImmediate` after the
 * writes) calls {@link WriteBatch.written}.
 */
/**
 * ioredis' own per-command `commandTimeout` behind a WriteBatch deadline: only a backstop for
 * commands sent outside a batch (QUIT at close), long enough never to fire before the batch's.
 */
export function backstopTimeoutMs(deadlineMs: number): number {
  return Math.max(10 * deadlineMs, 1_000);
}

export class WriteBatch {
  /** The rejecters of calls still waiting for their reply. */
  private readonly waiting = new Set<(err: Error) => void>();
  private timer: NodeJS.Timeout | undefined;
  private isWritten = false;

  constructor(
    private readonly timeoutMs: number,
    private readonly timeoutError: (timeoutMs: number) => BackendUnavailableError,
  ) {}

  /** `reply`, or the timeout error when it has not come `timeoutMs` after the write. */
  guard<T>(reply: Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.waiting.add(reject);
      reply.then(
        (value) => {
          this.settled(reject);
          resolve(value);
        },
        (err: unknown) => {
          this.settled(reject);
          reject(err);
        },
      );
    });
  }

  /** The batch has been handed to the socket(s): the deadline starts now. */
  written(): void {
    this.isWritten = true;
    if (this.waiting.size > 0) this.timer = setTimeout(this.onTimer, this.timeoutMs);
  }

  private settled(reject: (err: Error) => void): void {
    this.waiting.delete(reject);
    if (this.waiting.size === 0 && this.isWritten && this.timer !== undefined) clearTimeout(this.timer);
  }

  private readonly onTimer = (): void => {
    setImmediate(this.expire);
  };

  private readonly expire = (): void => {
    if (this.waiting.size === 0) return;
    const err = this.timeoutError(this.timeoutMs);
    for (const reject of this.waiting) reject(err);
    this.waiting.clear();
  };
}
