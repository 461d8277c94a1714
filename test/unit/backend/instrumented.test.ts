import { describe, expect, it } from 'vitest';
import { InstrumentedBackend } from '../../../src/backend/instrumented.js';
import { BackendUnavailableError, CancelledError } from '../../../src/errors.js';
import { ScriptedBackend, op } from '../resilience/fakes.js';

/** InstrumentedBackend times real round trips only: a request dropped because its caller left made none. */
describe('InstrumentedBackend', () => {
  const OPTIONS = { chargeOnDeny: false } as const;

  it('observes successes and failures, but not a request cancelled by its caller', async () => {
    const inner = new ScriptedBackend();
    const seen: boolean[] = [];
    const backend = new InstrumentedBackend(inner, (_s, ok) => seen.push(ok));
    await backend.evaluate([op({ key: 'a' })], OPTIONS);
    inner.fail(new BackendUnavailableError('timeout'));
    await expect(backend.evaluate([op({ key: 'a' })], OPTIONS)).rejects.toBeInstanceOf(BackendUnavailableError);
    inner.fail(new CancelledError('caller gone'));
    await expect(backend.evaluate([op({ key: 'a' })], OPTIONS)).rejects.toBeInstanceOf(CancelledError);
    expect(seen).toEqual([true, false]);
  });
});
