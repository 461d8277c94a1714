import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

/**
 * One supported Node range, said the same way in the three places a user meets it: package.json's
 * `engines` (npm warns outside it), the Dockerfile's base image (what production runs) and
 * README.md (what a reader is told). The range names LTS lines only; the image must be one of
 * them, and the Node running these tests must be inside it (the range is the one we test on).
 */
const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const read = (f: string): string => readFileSync(path.join(ROOT, f), 'utf8');
const engines = (JSON.parse(read('package.json')) as { engines: { node: string } }).engines.node;

type Version = readonly [number, number, number];
const parse = (v: string): Version => {
  const [a = 0, b = 0, c = 0] = v.replace(/^v/, '').split('.').map(Number);
  return [a, b, c];
};
const atLeast = (v: Version, min: Version): boolean => {
  for (let i = 0; i < 3; i++) if (v[i] !== min[i]) return v[i]! > min[i]!;
  return true;
};
/** npm's `^X.Y` (same major, at least X.Y) and `>=X[.Y]`, joined by `||`: all `engines` may use here. */
function satisfies(version: string, range: string): boolean {
  const v = parse(version);
  return range.split('||').some((part) => {
    const p = part.trim();
    const m = /^(\^|>=)(\d+(?:\.\d+){0,2})$/.exec(p);
    if (m === null) throw new Error(`engines.node: cannot read ${JSON.stringify(p)}; use ^X.Y or >=X`);
    const min = parse(m[2]!);
    return m[1] === '^' ? v[0] === min[0] && atLeast(v, min) : atLeast(v, min);
  });
}

describe('the supported Node range', () => {
  it('engines names LTS (even-numbered) lines only', () => {
    for (const part of engines.split('||')) expect(parse(part.trim().replace(/^(\^|>=)/, ''))[0]! % 2, part).toBe(0);
  });

  it("the Dockerfile's base image is an LTS line inside engines", () => {
    const m = /^ARG NODE_VERSION=(\d+)$/m.exec(read('Dockerfile'));
    expect(m, 'Dockerfile: ARG NODE_VERSION=<major>').not.toBeNull();
    expect(Number(m![1]) % 2).toBe(0);
    expect(satisfies(`${m![1]}.0.0`, engines), `node:${m![1]} against engines ${engines}`).toBe(true);
    expect(read('Dockerfile')).toContain(engines);
  });

  it('README.md states the same range', () => {
    expect(read('README.md')).toContain(`\`${engines}\``);
  });

  it('the Node running these tests is inside it', () => {
    expect(satisfies(process.versions.node, engines), `Node ${process.versions.node} against ${engines}`).toBe(true);
  });

  it('reads the forms it accepts, and refuses others', () => {
    expect(satisfies('20.20.2', '^20.12 || >=26')).toBe(true);
    expect(satisfies('20.11.9', '^20.12 || >=26')).toBe(false);
    expect(satisfies('21.0.0', '^20.12 || >=26')).toBe(false);
    expect(satisfies('27.1.0', '^20.12 || >=26')).toBe(true);
    expect(() => satisfies('20.0.0', '~20')).toThrow(/cannot read "~20"/);
  });
});
