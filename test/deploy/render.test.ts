import { spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { ROOT, loadManifestFile, manifestFiles, type K8sObject } from './lib/manifests.js';

/**
 * deploy/README.md's rendering steps, run as written: `kubectl kustomize` (kubectl's built-in
 * kustomize, so no separate binary) renders each kustomization into exactly the shipped objects,
 * and step 2's image edit, run on a copy of deploy/kubernetes, sets the image of both
 * Deployments that run the meshlimit image.
 */
const README = readFileSync(path.join(ROOT, 'deploy/README.md'), 'utf8');
const IMAGE_EDIT =
  "sed -i.bak 's|newName: meshlimit$|newName: registry.example.com/meshlimit|' deploy/kubernetes/kustomization.yaml && rm deploy/kubernetes/kustomization.yaml.bak";
const work = mkdtempSync(path.join(tmpdir(), 'meshlimit-render-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

function kustomize(dir: string): K8sObject[] {
  const r = spawnSync('kubectl', ['kustomize', dir], { encoding: 'utf8', timeout: 60_000 });
  expect(r.error, 'kubectl is not on PATH (npm test lists what it needs: test/prerequisites.mjs)').toBeUndefined();
  expect(r.status, r.stderr).toBe(0);
  return parseAllDocuments(r.stdout).map((d) => d.toJS() as K8sObject);
}
const id = (o: K8sObject): string => `${o.kind}/${o.metadata?.namespace ?? ''}/${o.metadata?.name ?? ''}`;
const images = (objects: K8sObject[]): Record<string, string[]> =>
  Object.fromEntries(
    objects
      .filter((o) => o.kind === 'Deployment')
      .map((o) => {
        const spec = (o as unknown as { spec: { template: { spec: { containers: { image: string }[] } } } }).spec;
        return [o.metadata?.name ?? '', spec.template.spec.containers.map((c) => c.image)];
      }),
  );

describe.each(['deploy/kubernetes', 'deploy/istio'])('kubectl kustomize %s', (tree) => {
  it('renders exactly the manifests of the tree', () => {
    const shipped = manifestFiles(path.join(ROOT, tree))
      .flatMap(loadManifestFile)
      .map((d) => id(d.object as K8sObject));
    expect(kustomize(path.join(ROOT, tree)).map(id).sort()).toEqual(shipped.sort());
  });
});

describe('deploy/README.md step 2: setting the image', () => {
  it('is the command the README shows', () => {
    expect(README).toContain(IMAGE_EDIT);
    expect(README).toContain("kubectl kustomize deploy/kubernetes | grep 'image:'");
  });

  it('run on a copy, changes the meshlimit and user-service Deployments and nothing else', () => {
    cpSync(path.join(ROOT, 'deploy/kubernetes'), path.join(work, 'deploy/kubernetes'), { recursive: true });
    const before = images(kustomize(path.join(work, 'deploy/kubernetes')));
    expect(before).toEqual({ meshlimit: ['meshlimit:0.1.0'], 'user-service': ['meshlimit:0.1.0'] });
    const r = spawnSync('sh', ['-c', IMAGE_EDIT], { cwd: work, encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    const after = images(kustomize(path.join(work, 'deploy/kubernetes')));
    expect(after).toEqual({
      meshlimit: ['registry.example.com/meshlimit:0.1.0'],
      'user-service': ['registry.example.com/meshlimit:0.1.0'],
    });
  });
});

describe('deploy/README.md: checking the ConfigMap before applying it', () => {
  const CHECK = 'npm run -s check-config -- deploy/kubernetes/meshlimit/configmap.yaml';

  it('is the command the README shows, and it passes on the shipped ConfigMap', () => {
    expect(README).toContain(CHECK);
    const r = spawnSync('sh', ['-c', CHECK], { cwd: ROOT, encoding: 'utf8', timeout: 60_000 });
    expect(r.status, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^config OK: \d+ files, \d+ domains/m);
    expect(r.stdout).toContain('ConfigMap meshlimit-config, data.edge.yaml');
  });

  it('fails, naming the ConfigMap key and line, when a file in it is broken', () => {
    const broken = path.join(work, 'broken-configmap.yaml');
    const text = readFileSync(path.join(ROOT, 'deploy/kubernetes/meshlimit/configmap.yaml'), 'utf8');
    writeFileSync(broken, text.replace(/requests_per_unit: 100\b/, 'requests_per_unit: lots'));
    expect(text).not.toBe(text.replace(/requests_per_unit: 100\b/, 'requests_per_unit: lots'));
    const r = spawnSync('npm', ['run', '-s', 'check-config', '--', broken], { cwd: ROOT, encoding: 'utf8', timeout: 60_000 });
    expect(r.status).toBe(1);
    expect(r.stdout + r.stderr).toMatch(/data\.edge\.yaml.*line \d+, manifest line \d+/s);
  });
});
