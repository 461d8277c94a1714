import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { checkKustomization } from './lib/consistency.js';
import { ROOT, loadManifestFile, manifestFiles, rel, validateManifest } from './lib/manifests.js';
import { filesUnder, scanFiles, scanText } from './lib/secrets.js';

/**
 * Every Kubernetes and Istio manifest under deploy/ validates against its schema
 * (kubernetes-models, @kubernetes-models/istio, plus unknown-field detection; see
 * lib/manifests.ts), the kustomizations apply all of them, and no secret material is committed.
 * Deliberately broken manifests (test/deploy/fixtures/broken-manifests) are reported with the
 * file, the object and the field.
 */

const TREES = ['deploy/kubernetes', 'deploy/istio'] as const;

describe('deploy/ manifests validate against their schemas', () => {
  for (const tree of TREES) {
    for (const file of manifestFiles(path.join(ROOT, tree))) {
      it(rel(file), () => {
        const docs = loadManifestFile(file);
        expect(docs.length).toBeGreaterThan(0);
        expect(docs.flatMap(validateManifest)).toEqual([]);
      });
    }
  }

  it.each(TREES)('%s/kustomization.yaml applies every manifest of its tree', (tree) => {
    expect(checkKustomization(path.join(ROOT, tree), manifestFiles(path.join(ROOT, tree)))).toEqual([]);
  });

  it('a deliberately broken Deployment and EnvoyFilter are reported with the file, the object and the field', () => {
    const dir = path.join(ROOT, 'test/deploy/fixtures/broken-manifests');
    const problems = manifestFiles(dir).flatMap(loadManifestFile).flatMap(validateManifest);
    const d = 'test/deploy/fixtures/broken-manifests/deployment.yaml (document 1 at line 4, Deployment/broken)';
    const e = 'test/deploy/fixtures/broken-manifests/envoyfilter.yaml (document 1 at line 2, EnvoyFilter/broken)';
    expect(problems).toEqual([
      `${d}: /spec/template/spec/containers/0/ports/0/containerPort: must be integer`,
      `${d}: /spec/replica: unknown field (not in the Deployment schema)`,
      `${d}: /spec/template/spec/containers/0/livenesProbe: unknown field (not in the Deployment schema)`,
      `${e}: /spec/configPatches/0/applyTo: must be equal to one of the allowed values`,
      `${e}: /spec/workloadSelectors: unknown field (not in the EnvoyFilter schema)`,
    ]);
  });

  it('the shell scripts (create-secrets.sh, the Redis ConfigMap scripts) parse with sh -n', () => {
    const scripts: [string, string][] = [
      ['deploy/kubernetes/create-secrets.sh', readFileSync(path.join(ROOT, 'deploy/kubernetes/create-secrets.sh'), 'utf8')],
    ];
    for (const d of manifestFiles(path.join(ROOT, 'deploy/kubernetes')).flatMap(loadManifestFile)) {
      const data =
        (d.object as { kind?: string; data?: Record<string, string> }).kind === 'ConfigMap'
          ? ((d.object as { data?: Record<string, string> }).data ?? {})
          : {};
      for (const [key, text] of Object.entries(data)) if (key.endsWith('.sh')) scripts.push([`${rel(d.file)} (${key})`, text]);
    }
    expect(scripts.length).toBe(4);
    for (const [name, text] of scripts) {
      const r = spawnSync('sh', ['-n'], { input: text, encoding: 'utf8' });
      expect(r.status, `${name}: ${r.stderr}`).toBe(0);
    }
  });

  it("the Istio objects use one API version per group, the stable ones Istio 1.22+ serves (deploy/README's requirement)", () => {
    const versions = new Set<string>();
    for (const d of manifestFiles(path.join(ROOT, 'deploy/istio')).flatMap(loadManifestFile)) {
      const o = d.object as { apiVersion: string; kind: string };
      versions.add(o.kind === 'EnvoyFilter' ? `${o.apiVersion} (EnvoyFilter)` : o.apiVersion);
    }
    expect([...versions].sort()).toEqual(['networking.istio.io/v1', 'networking.istio.io/v1alpha3 (EnvoyFilter)', 'security.istio.io/v1']);
  });

  it('an Istio object at a v1beta1 version is refused, naming the versions validated', () => {
    const problems = validateManifest({
      file: path.join(ROOT, 'deploy/x.yaml'),
      index: 0,
      line: 1,
      object: { apiVersion: 'networking.istio.io/v1beta1', kind: 'Gateway', metadata: { name: 'g' } },
    });
    expect(problems).toHaveLength(1);
    expect(problems[0]).toContain('no schema for networking.istio.io/v1beta1 Gateway;');
    expect(problems[0]).toContain('networking.istio.io/v1/Gateway');
  });

  it('a kind without a schema is an error, not a silent pass', () => {
    const problems = validateManifest({
      file: path.join(ROOT, 'deploy/x.yaml'),
      index: 0,
      line: 1,
      object: { apiVersion: 'example.com/v1', kind: 'Widget', metadata: { name: 'w' } },
    });
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(
      /^deploy\/x\.yaml \(document 1 at line 1, Widget\/w\): no schema for example\.com\/v1 Widget; test\/deploy\/lib\/manifests\.ts validates v1\/Namespace, /,
    );
  });
});

describe('no secret material under deploy/ or in the Docker files', () => {
  it('finds none', () => {
    const files = [...filesUnder(path.join(ROOT, 'deploy')), path.join(ROOT, 'Dockerfile'), path.join(ROOT, '.dockerignore')];
    expect(files.length).toBeGreaterThan(25);
    expect(scanFiles(files).map((f) => `${rel(f.file)}:${f.line}: ${f.what}`)).toEqual([]);
  });

  it('the scan catches each kind of secret (samples assembled here, so none sits in the repository)', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'meshlimit-secret-scan-'));
    try {
      const dash5 = '-'.repeat(5);
      const samples: Record<string, string> = {
        'key.pem': `${dash5}BEGIN ${'PRIVATE'} KEY${dash5}\nMIIEvQ\n`,
        'token.txt': `Authorization: Bearer ${['eyJhbGciOiJFUzI1NiJ9', 'eyJzdWIiOiJ1LTEifQ', 'c2lnbmF0dXJlc2lnbmF0dXJl'].join('.')}\n`,
        'cloud.env': `AWS_ACCESS_KEY_ID=${'AKIA'}${'ABCDEFGHIJKLMNOP'}\n`,
        'app.yaml': 'database:\n  password: hunter2hunter2\n',
        'redis.conf': `requirepass ${'swordfish'}\n`,
        'url.txt': `REDIS_URL=redis://user:${'p4ssw0rd'}@redis:6379\n`,
        'secret.yaml': 'apiVersion: v1\nkind: Secret\nmetadata:\n  name: s\nstringData:\n  password: x\n',
        'deployment.yaml': 'env:\n  - name: REDIS_AUTH\n    value: letmein123\n',
        'compose.yaml': 'services:\n  r:\n    environment:\n      REDIS_PASSWORD: letmein123\n',
        'notes.md': 'Prose about a token: fine.\n\n```sh\nexport API_TOKEN=abcd1234efgh\n```\n',
      };
      for (const [name, text] of Object.entries(samples)) writeFileSync(path.join(dir, name), text);
      const found = scanFiles(filesUnder(dir)).map((f) => `${path.basename(f.file)}: ${f.what}`);
      expect(found).toEqual([
        'app.yaml: a literal value for password',
        'cloud.env: an AWS access key id',
        'compose.yaml: a literal value for REDIS_PASSWORD',
        'deployment.yaml: a literal value for the environment variable REDIS_AUTH',
        'key.pem: a private key',
        'notes.md: a literal value for API_TOKEN',
        'redis.conf: a literal Redis requirepass',
        'secret.yaml: a literal value for password',
        'secret.yaml: a Kubernetes Secret with data',
        'token.txt: a JSON Web Token',
        'url.txt: a URL with a password',
      ]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('references to secrets are not findings', () => {
    const text = [
      'REDIS_AUTH: ${REDIS_PASSWORD:?export it first}',
      '  password="$(openssl rand -hex 32)"',
      'kubectl create secret generic redis-auth --from-literal=password="$password"',
      'printf \'requirepass "%s"\\n\' "$REDIS_PASSWORD"',
      '          key: password',
      '    hs256_secret_env: EDGE_JWT_SECRET',
      '  token_entry: authorization',
      '            secretName: user-service-signing-key',
    ].join('\n');
    expect(scanText('refs.txt', text)).toEqual([]);
  });
});
