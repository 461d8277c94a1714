import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { createMetrics } from '../../../src/telemetry/metrics.js';

const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string };

describe('info metrics', () => {
  it('meshlimit_build_info carries the package and Node.js versions', async () => {
    const text = await createMetrics({ collectDefault: false }).render();
    expect(text).toMatch(
      new RegExp(`^meshlimit_build_info\\{version="${pkg.version}",commit="[0-9a-f]*",node_version="${process.version}"\\} 1$`, 'm'),
    );
  });

  it('meshlimit_config_info has one series, the version in use; a rejected reload keeps it', async () => {
    const metrics = createMetrics({ collectDefault: false });
    const series = async () => (await metrics.render()).split('\n').filter((l) => l.startsWith('meshlimit_config_info{'));
    expect(await series()).toEqual([]);
    metrics.configReload(true, { rules: 1, domains: ['a'], version: 'v1' });
    metrics.configReload(true, { rules: 1, domains: ['a'], version: 'v2' });
    metrics.configReload(false);
    expect(await series()).toEqual(['meshlimit_config_info{version="v2"} 1']);
  });
});
