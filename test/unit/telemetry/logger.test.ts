import { describe, expect, it } from 'vitest';
import { createLogger, formatTextLine } from '../../../src/telemetry/logger.js';

const NOW = new Date('2024-05-01T12:00:00.000Z');

function capture() {
  const lines: string[] = [];
  return { lines, destination: { write: (line: string) => void lines.push(line) } };
}

describe('text format', () => {
  it('writes one logfmt line: time, level, msg, then fields', () => {
    const { lines, destination } = capture();
    const log = createLogger({ level: 'info', format: 'text', destination, now: () => NOW });
    log.info({ rules: 12, dir: '/etc/meshlimit config', ok: true }, 'config loaded');
    expect(lines).toEqual(['time=2024-05-01T12:00:00.000Z level=info msg="config loaded" rules=12 dir="/etc/meshlimit config" ok=true\n']);
  });

  it('flattens nested objects and errors to dotted keys on one line', () => {
    const { lines, destination } = capture();
    const log = createLogger({ level: 'info', format: 'text', destination, now: () => NOW });
    const err = new Error('connect ECONNREFUSED');
    err.stack = 'Error: connect ECONNREFUSED\n    at x.js:1:1';
    log.error({ err, backend: { kind: 'redis', nodes: ['a:1', 'b:2'] } }, 'backend down');
    expect(lines).toEqual([
      'time=2024-05-01T12:00:00.000Z level=error msg="backend down" err.type=Error err.message="connect ECONNREFUSED" ' +
        'err.stack="Error: connect ECONNREFUSED\\n    at x.js:1:1" backend.kind=redis backend.nodes="[\\"a:1\\",\\"b:2\\"]"\n',
    ]);
  });

  it('drops events below the level', () => {
    const { lines, destination } = capture();
    const log = createLogger({ level: 'warn', format: 'text', destination, now: () => NOW });
    log.info('hidden');
    log.debug('hidden');
    log.warn('shown');
    expect(lines).toEqual(['time=2024-05-01T12:00:00.000Z level=warn msg=shown\n']);
  });

  it('redacts credential-looking fields', () => {
    const { lines, destination } = capture();
    const log = createLogger({ level: 'info', format: 'text', destination, now: () => NOW });
    log.info({ password: 'p1', redis: { password: 'p2', auth: 'p3' }, token: 't', headers: { authorization: 'Bearer x' } }, 'x');
    expect(lines).toEqual([
      'time=2024-05-01T12:00:00.000Z level=info msg=x password=[REDACTED] redis.password=[REDACTED] redis.auth=[REDACTED] token=[REDACTED] headers.authorization=[REDACTED]\n',
    ]);
  });

  it('quotes values with spaces, quotes, equals signs or control characters', () => {
    expect(formatTextLine('{"msg":"a","v1":"plain","v2":"a=b","v3":"say \\"hi\\"","v4":"tab\\there","v5":"","v6":null}')).toBe(
      'msg=a v1=plain v2="a=b" v3="say \\"hi\\"" v4="tab\\there" v5="" v6=null\n',
    );
  });

  it('passes through a line that is not JSON', () => {
    expect(formatTextLine('not json')).toBe('not json\n');
  });
});

describe('json format', () => {
  it("is pino's default JSON line", () => {
    const { lines, destination } = capture();
    const log = createLogger({ level: 'debug', format: 'json', destination, now: () => NOW });
    log.debug({ rules: 3, password: 'x' }, 'loaded');
    expect(lines).toHaveLength(1);
    const record = JSON.parse(lines[0] as string) as Record<string, unknown>;
    expect(record).toEqual({
      level: 20,
      time: NOW.getTime(),
      pid: process.pid,
      hostname: expect.any(String),
      rules: 3,
      password: '[REDACTED]',
      msg: 'loaded',
    });
  });
});
