import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { spawnService } from '../support/service-process.js';

/**
 * What broke: a config directory with several errors stopped start-up with one log line holding
 * every error joined by a literal `\n`, unreadable in a terminal or `kubectl logs`. Now each
 * error is a line of its own (naming file, field and line), then one fatal line says why.
 */
const dir = mkdtempSync(path.join(tmpdir(), 'meshlimit-broken-'));
writeFileSync(path.join(dir, 'a.yaml'), 'domain: a\ndescriptors:\n  - key: k\n    rate_limit: { unit: fortnight, requests_per_unit: 1 }\n');
writeFileSync(path.join(dir, 'b.yaml'), 'domain: b\ndescriptors:\n  - key: k\n    rate_limit: { unit: second, requests_per_unit: -1 }\n');
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('a broken config at start-up', () => {
  it('is reported one error per line, then why the service stops', async () => {
    const svc = await spawnService({ CONFIG_DIR: dir, LOG_FORMAT: 'text' }, { waitReady: false });
    expect(await svc.proc.exited).toBe(1);
    const lines = svc.proc.output().trim().split('\n');
    expect(svc.proc.output()).not.toContain('\\n');
    expect(lines).toEqual([
      expect.stringMatching(
        /level=error msg=".*a\.yaml: descriptors\[0\]\.rate_limit\.unit: invalid rate limit unit 'fortnight' \(line 4\)/,
      ),
      expect.stringMatching(/level=error msg=".*b\.yaml: descriptors\[0\]\.rate_limit\.requests_per_unit: .*\(line 4\)/),
      expect.stringMatching(
        /level=fatal msg="meshlimit could not start: the config is invalid \(errors above\)" code=ML_ERR_CONFIG errors=2/,
      ),
    ]);
  });
});
