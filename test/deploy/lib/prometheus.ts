import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { getFreePort } from '../../support/ports.js';

/**
 * A throw-away Prometheus server (Debian's `prometheus` package) on a free loopback port, with its
 * TSDB in a temp directory: for checking that the dashboard's queries and the alert rules work
 * against a live meshlimit. Killed on `stop()` and when the test process exits.
 */
export interface PrometheusInstance {
  readonly url: string;
  /** GET /api/v1/<endpoint>; throws on HTTP or API errors with Prometheus's message. */
  api<T>(endpoint: string, params?: Record<string, string>): Promise<T>;
  /** Prometheus's own log, for failure messages. */
  output(): string;
  stop(): Promise<void>;
}

export interface PrometheusOptions {
  /** `host:port` targets scraped as job "meshlimit". */
  readonly targets: readonly string[];
  readonly scrapeInterval: string;
  /** Absolute paths of rule files to load. */
  readonly ruleFiles?: readonly string[];
}

/** Throws with an install hint when the binaries are missing. */
export function assertPrometheusInstalled(): void {
  for (const bin of ['prometheus', 'promtool']) {
    const r = spawnSync(bin, ['--version'], { encoding: 'utf8' });
    if (r.error || r.status !== 0)
      throw new Error(
        `${bin} is not installed or not on PATH; the dashboard and alert tests need it (apt-get install prometheus; .ci/run installs it)`,
      );
  }
}

const live = new Set<ChildProcess>();
process.on('exit', () => {
  for (const c of live) c.kill('SIGKILL');
});

export async function startPrometheus(opts: PrometheusOptions): Promise<PrometheusInstance> {
  const dir = mkdtempSync(path.join(tmpdir(), 'meshlimit-prometheus-'));
  const config = [
    'global:',
    `  scrape_interval: ${opts.scrapeInterval}`,
    `  evaluation_interval: ${opts.scrapeInterval}`,
    'rule_files:',
    ...(opts.ruleFiles ?? []).map((f) => `  - ${JSON.stringify(f)}`),
    ...(opts.ruleFiles?.length ? [] : ['  []']),
    'scrape_configs:',
    '  - job_name: meshlimit',
    `    scrape_interval: ${opts.scrapeInterval}`,
    `    scrape_timeout: ${opts.scrapeInterval}`,
    '    static_configs:',
    `      - targets: [${opts.targets.map((t) => JSON.stringify(t)).join(', ')}]`,
  ].join('\n');
  writeFileSync(path.join(dir, 'prometheus.yml'), config);
  const check = spawnSync('promtool', ['check', 'config', path.join(dir, 'prometheus.yml')], { encoding: 'utf8' });
  if (check.status !== 0) throw new Error(`generated prometheus.yml is invalid:\n${check.stdout}${check.stderr}`);

  let lastError = '';
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await getFreePort();
    const child = spawn(
      'prometheus',
      [
        `--config.file=${path.join(dir, 'prometheus.yml')}`,
        `--storage.tsdb.path=${path.join(dir, 'data')}`,
        `--web.listen-address=127.0.0.1:${port}`,
        '--storage.tsdb.retention.time=1h',
        '--log.level=warn',
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    live.add(child);
    let out = '';
    const keep = (b: Buffer): void => {
      out = (out + b.toString()).slice(-8000);
    };
    child.stdout!.on('data', keep);
    child.stderr!.on('data', keep);
    const exited = new Promise<void>((resolve) => child.once('exit', () => (live.delete(child), resolve())));
    const url = `http://127.0.0.1:${port}`;
    const deadline = Date.now() + 15_000;
    let ready = false;
    while (Date.now() < deadline && child.exitCode === null) {
      try {
        if ((await fetch(`${url}/-/ready`)).status === 200) {
          ready = true;
          break;
        }
      } catch {
        // not listening yet
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    if (!ready) {
      child.kill('SIGKILL');
      await exited;
      lastError = out;
      if (/address already in use/i.test(out)) continue;
      break;
    }
    return {
      url,
      output: () => out,
      async api<T>(endpoint: string, params: Record<string, string> = {}): Promise<T> {
        const res = await fetch(`${url}/api/v1/${endpoint}?${new URLSearchParams(params).toString()}`);
        const body = (await res.json()) as { status: string; data: T; error?: string; errorType?: string };
        if (body.status !== 'success')
          throw new Error(`Prometheus ${endpoint} ${JSON.stringify(params)}: ${body.errorType ?? ''} ${body.error ?? res.status}`);
        return body.data;
      },
      async stop() {
        if (child.exitCode === null && child.signalCode === null) {
          child.kill('SIGTERM');
          const timer = setTimeout(() => child.kill('SIGKILL'), 3000);
          await exited;
          clearTimeout(timer);
        }
        rmSync(dir, { recursive: true, force: true });
      },
    };
  }
  rmSync(dir, { recursive: true, force: true });
  throw new Error(`prometheus did not become ready:\n${lastError}`);
}

/** One sample of an instant-query vector. */
export interface VectorSample {
  readonly metric: Record<string, string>;
  readonly value: [number, string];
}

export interface QueryData {
  readonly resultType: 'vector' | 'scalar' | 'matrix' | 'string';
  readonly result: VectorSample[] | [number, string];
}

/** Sample values of an instant query's result (vector or scalar) as numbers. */
export function sampleValues(data: QueryData): number[] {
  if (data.resultType === 'scalar') return [Number((data.result as [number, string])[1])];
  if (data.resultType === 'vector') return (data.result as VectorSample[]).map((s) => Number(s.value[1]));
  return [];
}
