import type { Command } from 'ioredis';
import { ReplyError } from 'ioredis';
import { afterEach, describe, expect, it } from 'vitest';
import type { CounterOp } from '../../../src/limiter/types.js';
import { RedisClusterBackend } from '../../../src/backend/redis/cluster-backend.js';
import { assembleEvaluateScripts } from '../../../src/backend/redis/lua-assembler.js';
import { BackendError, BackendUnavailableError } from '../../../src/errors.js';

/**
 * The cluster backend's resend policy, with the ioredis client's three entry points replaced by
 * scripted fakes (no I/O): which failures are sent again, how (auto-pipelined or on their own,
 * EVALSHA or EVAL), and that nothing that may have run is ever resent. The same paths run against
 * a real cluster in test/integration/cluster/.
 */

type Send = { via: 'auto' | 'direct'; name: 'evalsha' | 'eval'; head: string };

const reply = (m: string): Error => new (ReplyError as unknown as new (m: string) => Error)(m);
const T0 = 1_700_000_040_000;
/** lua/evaluate-one.lua's integer reply for `op`: not over, 4 left, reset in 60,000 ms (60_000 x (burst + 1) + 4). */
const OK_REPLY = 60_000 * 6 + 4;
const op: CounterOp = { key: 'k{a}', algorithm: 'fixed_window', windowMs: 60_000, threshold: 5, burst: 5, hits: 1, enforce: true };

/** A send that never settles (e.g. a call held in the cluster client's queue). */
const NEVER = Symbol('never');
const opened: RedisClusterBackend[] = [];
afterEach(async () => {
  await Promise.all(opened.splice(0).map((b) => b.close()));
});

/** A backend whose client answers each send with the next scripted outcome. */
function scripted(outcomes: Array<unknown | Error>, commandTimeoutMs?: number): { backend: RedisClusterBackend; sends: Send[] } {
  const backend = new RedisClusterBackend({
    nodes: [{ host: '127.0.0.1', port: 1 }],
    type: 'cluster',
    lazyConnect: true,
    commandTimeoutMs,
  });
  opened.push(backend);
  const sends: Send[] = [];
  const next = (s: Send): Promise<unknown> => {
    sends.push(s);
    const o = outcomes.shift();
    if (o === undefined) throw new Error('unexpected send');
    if (o === NEVER) return new Promise(() => undefined);
    return o instanceof Error ? Promise.reject(o) : Promise.resolve(o);
  };
  const c = backend.client as unknown as Record<string, unknown>;
  c.status = 'ready';
  c.evalsha = (head: string) => next({ via: 'auto', name: 'evalsha', head });
  c.eval = (head: string) => next({ via: 'auto', name: 'eval', head });
  c.sendCommand = (cmd: Command) => next({ via: 'direct', name: cmd.name as 'evalsha' | 'eval', head: String(cmd.args[0]) });
  c.quit = () => Promise.resolve('OK');
  return { backend, sends };
}

const evaluate = (b: RedisClusterBackend) => b.evaluate([op], { now: T0, chargeOnDeny: false });
const shape = (sends: Send[]) => sends.map((s) => `${s.via}:${s.name}:${s.head.length === 40 ? 'sha' : 'source'}`);

describe('cluster script calls: what is sent again, and how', () => {
  it('one auto-pipelined EVALSHA when all goes well', async () => {
    const { backend, sends } = scripted([OK_REPLY]);
    expect(await evaluate(backend)).toEqual({ denied: false, outcomes: [{ overLimit: false, remaining: 4, resetMs: 60_000 }] });
    expect(shape(sends)).toEqual(['auto:evalsha:sha']);
  });

  it('a one-op request runs the one-op script of its algorithm; a split request the several-ops script per slot', async () => {
    const scripts = assembleEvaluateScripts();
    const one = scripted([OK_REPLY]);
    await evaluate(one.backend);
    expect(one.sends.map((s) => s.head)).toEqual([scripts.one.fixed_window.sha1]);
    const other = { ...op, key: 'k{b}' }; // another slot than k{a}
    const split = scripted([
      [0, 0, 4, 60_000, T0],
      [0, 0, 4, 60_000, T0],
    ]);
    expect((await split.backend.evaluate([op, other], { now: T0, chargeOnDeny: false })).outcomes.map((o) => o.remaining)).toEqual([4, 4]);
    expect(split.sends.map((s) => s.head)).toEqual([scripts.multi.sha1, scripts.multi.sha1]);
  });

  it('NOSCRIPT: EVAL with the source, still auto-pipelined', async () => {
    const { backend, sends } = scripted([reply('NOSCRIPT No matching script. Please use EVAL.'), OK_REPLY]);
    expect((await evaluate(backend)).denied).toBe(false);
    expect(shape(sends)).toEqual(['auto:evalsha:sha', 'auto:eval:source']);
  });

  it.each(['MOVED 3999 127.0.0.1:7001', 'ASK 3999 127.0.0.1:7001', 'TRYAGAIN Multiple keys request during rehashing of slot'])(
    '%s from a mixed batch: sent once more on its own (ioredis follows it there)',
    async (m) => {
      const { backend, sends } = scripted([reply(m), OK_REPLY]);
      expect((await evaluate(backend)).denied).toBe(false);
      expect(shape(sends)).toEqual(['auto:evalsha:sha', 'direct:evalsha:sha']);
    },
  );

  it('a batch refused because the slot map changed under it: sent once more on its own', async () => {
    const { backend, sends } = scripted([new Error('All keys in the pipeline should belong to the same slots allocation group'), OK_REPLY]);
    expect((await evaluate(backend)).denied).toBe(false);
    expect(shape(sends)).toEqual(['auto:evalsha:sha', 'direct:evalsha:sha']);
  });

  it('MOVED then NOSCRIPT on the new owner: EVAL on its own; at most three sends in all', async () => {
    const { backend, sends } = scripted([reply('MOVED 1 h:1'), reply('NOSCRIPT No matching script.'), OK_REPLY]);
    expect((await evaluate(backend)).denied).toBe(false);
    expect(shape(sends)).toEqual(['auto:evalsha:sha', 'direct:evalsha:sha', 'direct:eval:source']);
    const again = scripted([reply('NOSCRIPT x'), reply('TRYAGAIN x'), reply('TRYAGAIN still')]);
    const err = await evaluate(again.backend).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BackendUnavailableError);
    expect(shape(again.sends)).toEqual(['auto:evalsha:sha', 'auto:eval:source', 'direct:eval:source']);
  });

  it.each([
    [new Error('Connection is closed.'), BackendUnavailableError],
    [new Error('Command timed out'), BackendUnavailableError],
    [reply('CLUSTERDOWN The cluster is down'), BackendUnavailableError],
    [new Error('Too many Cluster redirections. Last error: ReplyError: MOVED 1 h:1'), BackendUnavailableError],
    [reply('ERR Error running script: WRONGTYPE Operation against a key holding the wrong kind of value'), BackendError],
  ] as const)('%s may have run (or cannot succeed): never sent again', async (error, kind) => {
    const { backend, sends } = scripted([error]);
    const err = await evaluate(backend).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(kind);
    expect(sends).toHaveLength(1);
  });

  it('a call that never settles fails as unavailable after 2 x the command timeout', async () => {
    const { backend, sends } = scripted([NEVER], 15);
    const started = performance.now();
    const err = await evaluate(backend).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BackendUnavailableError);
    expect((err as Error).message).toMatch(/no answer within 30 ms/);
    expect(performance.now() - started).toBeGreaterThanOrEqual(29);
    expect(sends).toHaveLength(1);
  });

  it('a not-ready cluster fails at once, without sending', async () => {
    const { backend, sends } = scripted([OK_REPLY]);
    (backend.client as unknown as Record<string, unknown>).status = 'reconnecting';
    await expect(evaluate(backend)).rejects.toThrow(/^Redis cluster is not connected: .*\(detail: cluster client status reconnecting\)$/);
    expect(sends).toHaveLength(0);
  });
});
