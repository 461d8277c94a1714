import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { getFreePort } from '../support/ports.js';
import { eventually } from '../support/service.js';
import { ROOT } from './lib/manifests.js';

/**
 * The Dockerfile and the compose set-up, without a Docker engine (this machine has none).
 *
 * - The Dockerfile's shape: multi-stage, `npm ci` / `npm run build` / `npm prune --omit=dev`,
 *   a Node LTS base, the `node` user, `node dist/main.js`.
 * - The runtime stage's file set is enough: the test assembles exactly what the runtime stage's
 *   COPY lines copy (from the repository, and from a fresh compile for the build stage's dist/),
 *   then runs meshlimit, its check-config CLI and the sample user service from it, as the image's
 *   CMD and the Kubernetes user-service command do.
 * - `npm prune --omit=dev` keeps what the compiled code imports: every value import of a package
 *   in src/ (which compiles 1:1 to dist/) is a runtime dependency in package.json.
 * - compose.yaml mounts files that exist, needs the Redis password from the environment, binds
 *   to loopback only; its prometheus.yml is valid.
 *
 * What this cannot check: the base images' contents and `npm ci` itself (a real build does).
 */

const DOCKERFILE = path.join(ROOT, 'Dockerfile');

interface Stage {
  readonly from: string;
  readonly name: string | undefined;
  readonly instructions: { op: string; args: string }[];
}

/** FROM-separated stages with their instructions (line continuations joined, comments dropped). */
function stages(): Stage[] {
  const text = readFileSync(DOCKERFILE, 'utf8').replace(/\\\n/g, ' ');
  const args = new Map<string, string>();
  const out: { from: string; name: string | undefined; instructions: { op: string; args: string }[] }[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const [op, ...rest] = line.split(/\s+/);
    const a = rest.join(' ');
    if (op === 'ARG' && out.length === 0) {
      const [k, v] = a.split('=');
      args.set(k!, v ?? '');
    } else if (op === 'FROM') {
      const m = /^(\S+)(?:\s+AS\s+(\S+))?$/i.exec(a)!;
      out.push({ from: m[1]!.replace(/\$\{(\w+)\}/g, (_x, k: string) => args.get(k) ?? ''), name: m[2], instructions: [] });
    } else out.at(-1)?.instructions.push({ op: op!.toUpperCase(), args: a });
  }
  return out;
}

describe('Dockerfile', () => {
  it('builds in one stage and runs from a small non-root one', () => {
    const s = stages();
    expect(s.length).toBe(2);
    const [build, runtime] = s as [Stage, Stage];
    for (const st of s) expect(st.from).toMatch(/^node:(2[02468]|[3-9][02468])-alpine$/); // an even (LTS) Node line
    const runs = build.instructions.filter((i) => i.op === 'RUN').map((i) => i.args);
    expect(runs.some((r) => /\bnpm ci\b/.test(r))).toBe(true);
    expect(runs.some((r) => /npm run build/.test(r) && /npm prune --omit=dev/.test(r))).toBe(true);
    expect(runtime.instructions.filter((i) => i.op === 'RUN')).toEqual([]);
    expect(runtime.instructions.find((i) => i.op === 'USER')?.args).toBe('node');
    // The image runs what `npm start` runs (node flags included), without the npm wrapper.
    const start = (JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { scripts: { start: string } }).scripts.start;
    expect(start).toMatch(/^node (--[\w-]+=\S+ )*dist\/main\.js$/);
    expect(runtime.instructions.find((i) => i.op === 'CMD')?.args).toBe(JSON.stringify(start.split(' ')).replaceAll(',', ', '));
    const copies = runtime.instructions.filter((i) => i.op === 'COPY').map((i) => i.args.split(/\s+/).at(-1));
    expect(copies).toEqual(['./package.json', './node_modules', './dist', './lua', './console', './proto', './config', './bin']);
    const ignore = readFileSync(path.join(ROOT, '.dockerignore'), 'utf8').split('\n');
    for (const p of ['node_modules', 'dist', '.git', '.env']) expect(ignore).toContain(p);
  });

  it('every package src/ imports at run time is a runtime dependency (survives npm prune --omit=dev)', () => {
    const pkg = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { dependencies: Record<string, string> };
    const builtins = new Set(builtinModules);
    const missing = new Set<string>();
    const visit = (dir: string): void => {
      for (const name of readdirSync(dir)) {
        const p = path.join(dir, name);
        if (statSync(p).isDirectory()) visit(p);
        else if (name.endsWith('.ts')) {
          const text = readFileSync(p, 'utf8');
          for (const m of text.matchAll(/^(?:import|export)\s(?!type\s)[^'"]*?from\s+'([^'.][^']*)'|import\('([^'.][^']*)'\)/gm)) {
            const spec = (m[1] ?? m[2])!;
            if (spec.startsWith('node:') || builtins.has(spec)) continue;
            const name2 = spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0]!;
            if (!(name2 in pkg.dependencies)) missing.add(`${path.relative(ROOT, p)} imports ${spec}`);
          }
        }
      }
    };
    visit(path.join(ROOT, 'src'));
    expect([...missing]).toEqual([]);
  });
});

describe('the runtime stage runs meshlimit and the sample user service', () => {
  let app: string;
  const children = new Set<ChildProcess>();

  beforeAll(() => {
    app = mkdtempSync(path.join(tmpdir(), 'meshlimit-image-'));
    // The build stage's products: dist/ from src/ with tsconfig.build.json; node_modules and
    // package.json from the repository (the image's node_modules is the pruned copy of these).
    const tsc = spawnSync(
      process.execPath,
      [
        path.join(ROOT, 'node_modules/typescript/bin/tsc'),
        '-p',
        path.join(ROOT, 'tsconfig.build.json'),
        '--outDir',
        path.join(app, '.build-dist'),
      ],
      {
        cwd: ROOT,
        encoding: 'utf8',
      },
    );
    expect(tsc.status, tsc.stdout + tsc.stderr).toBe(0);
    const fromBuild: Record<string, () => void> = {
      '/app/package.json': () => cpSync(path.join(ROOT, 'package.json'), path.join(app, 'package.json')),
      '/app/node_modules': () => symlinkSync(path.join(ROOT, 'node_modules'), path.join(app, 'node_modules'), 'dir'),
      '/app/dist': () => cpSync(path.join(app, '.build-dist'), path.join(app, 'dist'), { recursive: true }),
    };
    const runtime = stages()[1]!;
    for (const c of runtime.instructions.filter((i) => i.op === 'COPY')) {
      const parts = c.args.split(/\s+/);
      const from = parts.find((p) => p.startsWith('--from='));
      const [src, dst] = parts.filter((p) => !p.startsWith('--')) as [string, string];
      if (from !== undefined) {
        const emulate = fromBuild[src];
        if (emulate === undefined)
          throw new Error(`Dockerfile: COPY ${c.args}: this test does not know what the build stage puts at ${src}`);
        emulate();
      } else cpSync(path.join(ROOT, src), path.join(app, dst), { recursive: true });
    }
    rmSync(path.join(app, '.build-dist'), { recursive: true, force: true });
  }, 120_000);

  afterAll(() => {
    for (const c of children) c.kill('SIGKILL');
    if (app !== undefined) rmSync(app, { recursive: true, force: true });
  });

  function run(args: string[], env: Record<string, string>): { child: ChildProcess; output: () => string; exited: Promise<number | null> } {
    // WORKDIR /app, NODE_ENV=production, no other environment (as in the image).
    const child = spawn(process.execPath, args, {
      cwd: app,
      env: { PATH: process.env.PATH ?? '', NODE_ENV: 'production', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    children.add(child);
    let out = '';
    child.stdout!.on('data', (b: Buffer) => (out += b.toString()));
    child.stderr!.on('data', (b: Buffer) => (out += b.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => (children.delete(child), resolve(code))));
    return { child, output: () => out, exited };
  }

  it('CMD node dist/main.js serves the example config and drains on SIGTERM', async () => {
    const [http, grpc] = [await getFreePort(), await getFreePort()];
    const r = run(['dist/main.js'], { PORT: String(http), GRPC_PORT: String(grpc), HOST: '127.0.0.1', GRPC_HOST: '127.0.0.1' });
    await eventually(
      async () => (await fetch(`http://127.0.0.1:${http}/healthcheck`).catch(() => undefined))?.status === 200,
      15_000,
      100,
    ).catch(() => {
      throw new Error(`meshlimit did not become ready from the image layout:\n${r.output()}`);
    });
    // ./config (copied by the image) is loaded: the example blocks 203.0.113.7 outright.
    const res = await fetch(`http://127.0.0.1:${http}/json`, {
      method: 'POST',
      body: JSON.stringify({ domain: 'edge', descriptors: [{ entries: [{ key: 'remote_address', value: '203.0.113.7' }] }] }),
    });
    expect(res.status).toBe(429);
    r.child.kill('SIGTERM');
    expect(await r.exited).toBe(0);
  });

  it('node bin/meshlimit.js check-config validates a config directory', async () => {
    const r = run(['bin/meshlimit.js', 'check-config', 'config'], {});
    expect(await r.exited, r.output()).toBe(0);
  });

  it('node dist/sample/user-service/main.js (the user-service Deployment command) serves its JWKS', async () => {
    const port = await getFreePort();
    const r = run(['dist/sample/user-service/main.js'], { USER_SERVICE_HOST: '127.0.0.1', USER_SERVICE_PORT: String(port) });
    let body: { keys?: unknown[] } = {};
    await eventually(
      async () => {
        const res = await fetch(`http://127.0.0.1:${port}/.well-known/jwks.json`).catch(() => undefined);
        if (res?.status !== 200) return false;
        body = (await res.json()) as { keys?: unknown[] };
        return true;
      },
      15_000,
      100,
    ).catch(() => {
      throw new Error(`the user service did not start from the image layout:\n${r.output()}`);
    });
    expect(body.keys?.length).toBe(1);
    r.child.kill('SIGTERM');
    expect(await r.exited).toBe(0);
  });
});

describe('deploy/docker (compose, not runnable here: no Docker engine)', () => {
  const dir = path.join(ROOT, 'deploy/docker');
  const compose = parseYaml(readFileSync(path.join(dir, 'compose.yaml'), 'utf8'), { merge: true }) as {
    services: Record<
      string,
      {
        build?: { context: string; dockerfile: string };
        volumes?: string[];
        ports?: string[];
        environment?: Record<string, string>;
        image?: string;
      }
    >;
  };

  it('mounts files that exist, builds from the repository Dockerfile and pins every image', () => {
    for (const [name, s] of Object.entries(compose.services)) {
      for (const v of s.volumes ?? []) {
        const host = v.split(':')[0]!;
        expect(existsSync(path.resolve(dir, host)), `compose.yaml: service ${name} mounts ${host}, which does not exist`).toBe(true);
      }
      if (s.build !== undefined)
        expect(existsSync(path.resolve(dir, s.build.context, s.build.dockerfile)), `service ${name} builds from a missing Dockerfile`).toBe(
          true,
        );
      expect(s.image, `service ${name}`).toMatch(/^[\w./-]+:(?!latest$)[\w.-]+$/);
      for (const p of s.ports ?? []) expect(p, `service ${name} publishes ${p} beyond loopback`).toMatch(/^127\.0\.0\.1:/);
    }
  });

  it('takes the Redis password from the environment, required, never a default', () => {
    const refs = Object.values(compose.services).flatMap((s) =>
      Object.entries(s.environment ?? {}).filter(([k]) => /(PASSWORD|_AUTH)$/.test(k)),
    );
    expect(refs.length).toBe(2);
    for (const [k, v] of refs) expect(v, k).toMatch(/^\$\{REDIS_PASSWORD:\?[^}]+\}$/);
  });

  it('its prometheus.yml is valid and loads the shipped rules', () => {
    const tmp = mkdtempSync(path.join(tmpdir(), 'meshlimit-compose-prom-'));
    try {
      const text = readFileSync(path.join(dir, 'prometheus.yml'), 'utf8').replace(
        '/etc/prometheus/rules/meshlimit.rules.yaml',
        path.join(ROOT, 'deploy/grafana/meshlimit.rules.yaml'),
      );
      writeFileSync(path.join(tmp, 'prometheus.yml'), text);
      const r = spawnSync('promtool', ['check', 'config', path.join(tmp, 'prometheus.yml')], { encoding: 'utf8' });
      expect(r.status, r.stdout + r.stderr).toBe(0);
      // Every rule of the shipped file, however many it has.
      const rules = parseYaml(readFileSync(path.join(ROOT, 'deploy/grafana/meshlimit.rules.yaml'), 'utf8')) as {
        groups: { rules: unknown[] }[];
      };
      expect(r.stdout).toContain(`SUCCESS: ${rules.groups.flatMap((g) => g.rules).length} rules found`);
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  });
});
