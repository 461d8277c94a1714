import { ReplyError } from 'ioredis';
import { describe, expect, it } from 'vitest';
import { toBackendError } from '../../../src/backend/redis/errors.js';
import { BackendError, BackendUnavailableError } from '../../../src/errors.js';

function reply(message: string): Error {
  return new (ReplyError as unknown as new (m: string) => Error)(message);
}
function sys(code: string): Error {
  return Object.assign(new Error(`connect ${code} 127.0.0.1:6379`), { code });
}

describe('ioredis and network errors -> backend errors', () => {
  it.each([
    reply('LOADING Redis is loading the dataset in memory'),
    reply('BUSY Redis is busy running a script'),
    reply('CLUSTERDOWN The cluster is down'),
    reply('TRYAGAIN Multiple keys request during rehashing of slot'),
    reply('MOVED 3999 127.0.0.1:6381'),
    reply("READONLY You can't write against a read only replica."),
    reply('MASTERDOWN Link with MASTER is down'),
    reply("OOM command not allowed when used memory > 'maxmemory'."),
    sys('ECONNREFUSED'),
    sys('ECONNRESET'),
    sys('EPIPE'),
    sys('ETIMEDOUT'),
    sys('ENOTFOUND'),
    new Error('Command timed out'),
    new Error("Stream isn't writeable and enableOfflineQueue options is false"),
    new Error('Connection is closed.'),
    Object.assign(new Error('Reached the max retries per request limit (which is 0).'), { name: 'MaxRetriesPerRequestError' }),
    // Redis Cluster and Sentinel conditions, as ioredis reports them
    reply('CLUSTERDOWN Hash slot not served'),
    reply('TRYAGAIN Multiple keys request during rehashing of slot'),
    reply('ASK 866 127.0.0.1:30002'),
    reply("READONLY You can't write against a read only replica."),
    new Error('Too many Cluster redirections. Last error: ReplyError: MOVED 866 127.0.0.1:30002'),
    new Error('Failed to refresh slots cache.'),
    new Error('None of startup nodes is available'),
    new Error("Cluster isn't ready and enableOfflineQueue options is false"),
    Object.assign(new Error('Cluster is ended.'), { name: 'AbortError' }),
    new Error('All sentinels are unreachable. Retrying from scratch after 50ms. Last error: connect ECONNREFUSED 127.0.0.1:26379'),
    new Error('All sentinels are unreachable and retry is disabled.'),
    new Error('All keys in the pipeline should belong to the same slots allocation group'),
  ])('transient: %s', (err) => {
    const mapped = toBackendError(err);
    expect(mapped).toBeInstanceOf(BackendUnavailableError);
    expect(mapped.transient).toBe(true);
    expect(mapped.cause).toBe(err);
    expect(mapped.message).toContain(err.message);
  });

  it.each([
    reply('ERR user_script:12: Script attempted to access nonexistent global variable'),
    reply('ERR Error running script (call to f_abc): @user_script:1: WRONGTYPE Operation against a key holding the wrong kind of value'),
    reply('WRONGTYPE Operation against a key holding the wrong kind of value'),
    reply('NOAUTH Authentication required.'),
    reply('WRONGPASS invalid username-password pair or user is disabled.'),
    reply("CROSSSLOT Keys in request don't hash to the same slot"),
    reply('NOSCRIPT No matching script. Please use EVAL.'),
    new TypeError('x is not a function'),
  ])('not transient: %s', (err) => {
    const mapped = toBackendError(err);
    expect(mapped).toBeInstanceOf(BackendError);
    expect(mapped.transient).toBe(false);
  });

  it('passes meshlimit backend errors through and wraps non-errors', () => {
    const e = new BackendError('bad reply');
    expect(toBackendError(e)).toBe(e);
    expect(toBackendError('weird')).toBeInstanceOf(BackendError);
  });
});
