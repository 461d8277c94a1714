import { monitorEventLoopDelay, performance, type IntervalHistogram } from 'node:perf_hooks';

/**
 * How late this process's event loop has been running, from Node's histogram
 * (`monitorEventLoopDelay`: libuv samples it every `resolutionMs`, not a JS timer). The histogram
 * records the time between samples, so an idle loop reads about the resolution: that is
 * subtracted. Read by admission control (shed while the loop lags) and by the circuit breaker
 * (time the loop spent lagging is not Redis's silence). Reading is a few property reads; the
 * 100 ms rollover runs on an unref'd timer.
 */
export class EventLoopDelay {
  private static instance: EventLoopDelay | undefined;
  private readonly histogram: IntervalHistogram;
  private previousMaxMs = 0;
  /** Lag (ms beyond the resolution) summed over the windows rolled over so far. */
  private cumulativeLagMs = 0;
  /** [end of a window (performance.now ms), cumulative lag at that time], oldest first, the last 100 (10 s). */
  private readonly marks: Array<readonly [number, number]> = [];
  private readonly timer: NodeJS.Timeout;

  /** One per process: every reader watches the same loop. */
  static shared(): EventLoopDelay {
    return (EventLoopDelay.instance ??= new EventLoopDelay());
  }

  constructor(
    windowMs = 100,
    private readonly resolutionMs = 10,
  ) {
    this.histogram = monitorEventLoopDelay({ resolution: resolutionMs });
    this.histogram.enable();
    this.timer = setInterval(() => this.rollover(), windowMs);
    this.timer.unref();
  }

  /** The largest delay in the current and the previous window: one slow turn counts for 100-200 ms. */
  recentMaxMs(): number {
    return Math.max(this.previousMaxMs, this.maxMs());
  }

  /**
   * Milliseconds the loop spent lagging since `since` (a performance.now() time), counted by whole
   * windows: the window holding `since` counts entirely, so this errs on the side of more lag.
   */
  lagSinceMs(since: number): number {
    let before = 0;
    for (let i = this.marks.length - 1; i >= 0; i--) {
      const [at, cumulative] = this.marks[i]!;
      if (at <= since) {
        before = cumulative;
        break;
      }
      if (i === 0) before = 0;
    }
    return this.cumulativeLagMs + this.windowLagMs() - before;
  }

  stop(): void {
    clearInterval(this.timer);
    this.histogram.disable();
  }

  private rollover(): void {
    this.previousMaxMs = this.maxMs();
    this.cumulativeLagMs += this.windowLagMs();
    this.marks.push([performance.now(), this.cumulativeLagMs]);
    if (this.marks.length > 100) this.marks.shift();
    this.histogram.reset();
  }

  /** The largest delay beyond the sampling interval in the current window (0 before any sample). */
  private maxMs(): number {
    return Math.max(0, this.histogram.max / 1e6 - this.resolutionMs);
  }

  /** The current window's samples' delays beyond the resolution, summed. */
  private windowLagMs(): number {
    const n = this.histogram.count;
    return n === 0 ? 0 : Math.max(0, (this.histogram.mean * n) / 1e6 - n * this.resolutionMs);
  }
}
