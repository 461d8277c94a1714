/**
 * Test-only preload for a service process (`NODE_OPTIONS=--import ./test/support/heap-probe.mjs`):
 * on SIGUSR2 it runs full garbage collections and writes one line to stderr,
 * `heap-probe {"seq":N,"heapUsed":BYTES,"rss":BYTES}`, so a test can tell what the process keeps
 * (heap after a full GC) from garbage V8 has not yet collected (RSS at any moment). Read it with
 * heapAfterFullGc() in h2-attacker.ts.
 */
import process from 'node:process';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc');
let seq = 0;
process.on('SIGUSR2', () => {
  for (let i = 0; i < 4; i++) gc();
  const m = process.memoryUsage();
  process.stderr.write(`heap-probe ${JSON.stringify({ seq: ++seq, heapUsed: m.heapUsed, rss: m.rss })}\n`);
});
