import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { parseAllDocuments } from 'yaml';

/**
 * A scan for secret material committed under deploy/ (and the Docker files): private keys,
 * tokens, cloud keys, literal passwords in config, Kubernetes Secrets with data, and secret-named
 * environment variables with a literal value. References are fine (`${REDIS_PASSWORD:?...}`,
 * `"$(openssl rand -hex 32)"`, `valueFrom.secretKeyRef`); values are not.
 */

export interface SecretFinding {
  readonly file: string;
  readonly line: number;
  readonly what: string;
}

const PATTERNS: readonly { what: string; re: RegExp }[] = [
  { what: 'a private key', re: /-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----/ },
  { what: 'a JSON Web Token', re: /\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}/ },
  { what: 'an AWS access key id', re: /\b(AKIA|ASIA)[0-9A-Z]{16}\b/ },
  { what: 'a GitHub token', re: /\bgh[pousr]_[A-Za-z0-9]{30,}\b/ },
  { what: 'a URL with a password', re: /\b[a-z][a-z0-9+.-]*:\/\/[^\s/:@]+:[^\s/@$]{3,}@/ },
];

/** `password: x`, `secret=x`, `token: "x"`, ... whose value is a literal, not a reference. */
const ASSIGNMENT = /(?<![\w${:.-])([A-Za-z_-]*(?:password|passwd|secret|token|api[_-]?key|private[_-]?key)[A-Za-z_-]*)\s*[:=]\s*(\S.*)$/i;
/** Keys that name where a secret is (a variable, a file, a header), not the secret itself. */
const REFERENCE_KEY = /(_entry|_env|_file|_path|_url|_name|_header|_ref)$|^secretName$/i;
/** redis.conf style: `requirepass <value>` at the start of a line. */
const REDIS_DIRECTIVE = /^\s*(requirepass|masterauth)\s+(\S+)/;

function isReference(raw: string): boolean {
  const v = raw.trim().replace(/^["']/, '');
  return (
    v === '' ||
    v.startsWith('$') || // ${VAR}, $VAR, $(command)
    v.startsWith('%s') || // a printf template filled from the environment
    v.startsWith('{{') || // a template
    /^(true|false|null|~|\[\]|\{\})$/i.test(v) ||
    /^<[^>]+>$/.test(v) // a placeholder in documentation: <password>
  );
}

/** Secret-looking environment variable names that must take their value from a Secret. */
const SECRET_ENV = /(PASSWORD|PASSWD|SECRET|TOKEN|AUTH|API_KEY|PRIVATE_KEY)$/;

export function scanText(file: string, text: string): SecretFinding[] {
  const out: SecretFinding[] = [];
  const lines = text.split('\n');
  // In Markdown, prose ("verified token: ...") is not config: only code blocks are read as such.
  const markdown = file.endsWith('.md');
  let inCode = false;
  lines.forEach((line, i) => {
    for (const p of PATTERNS) if (p.re.test(line)) out.push({ file, line: i + 1, what: p.what });
    const trimmed = line.trimStart();
    if (markdown && trimmed.startsWith('```')) inCode = !inCode;
    if (markdown && !inCode) return;
    if (trimmed.startsWith('#') || trimmed.startsWith('//') || trimmed.startsWith('--')) return;
    const a = ASSIGNMENT.exec(line);
    // A key name alone (`key: password` as in secretKeyRef) is a reference to a Secret's field.
    if (a !== null && !isReference(a[2]!) && !REFERENCE_KEY.test(a[1]!) && !/^\s*-?\s*key\s*:/.test(line)) {
      out.push({ file, line: i + 1, what: `a literal value for ${a[1]}` });
    }
    const r = REDIS_DIRECTIVE.exec(line);
    if (r !== null && !isReference(r[2]!)) out.push({ file, line: i + 1, what: `a literal Redis ${r[1]}` });
  });
  if (/\.ya?ml$/.test(file)) out.push(...scanYamlObjects(file, text));
  // The line scan and the YAML scan can both see one literal: report it once.
  const seen = new Set<string>();
  return out.filter((f) => !seen.has(f.what) && seen.add(f.what));
}

/** Kubernetes Secrets with data, and secret-named env vars with a literal `value`. */
function scanYamlObjects(file: string, text: string): SecretFinding[] {
  const out: SecretFinding[] = [];
  const lineOf = (offset: number | undefined): number => (offset === undefined ? 1 : text.slice(0, offset).split('\n').length);
  for (const doc of parseAllDocuments(text)) {
    if (doc.errors.length > 0) continue;
    const o = doc.toJS() as unknown;
    const line = lineOf(doc.contents?.range?.[0]);
    const visit = (v: unknown): void => {
      if (v === null || typeof v !== 'object') return;
      if (Array.isArray(v)) {
        for (const x of v) visit(x);
        return;
      }
      const m = v as Record<string, unknown>;
      if (m['kind'] === 'Secret' && (m['data'] !== undefined || m['stringData'] !== undefined))
        out.push({ file, line, what: 'a Kubernetes Secret with data' });
      if (typeof m['name'] === 'string' && SECRET_ENV.test(m['name']) && typeof m['value'] === 'string' && !isReference(m['value'])) {
        out.push({ file, line, what: `a literal value for the environment variable ${m['name']}` });
      }
      // compose-style environment maps: { REDIS_PASSWORD: literal }
      for (const [k, x] of Object.entries(m)) {
        if (SECRET_ENV.test(k) && typeof x === 'string' && !isReference(x)) out.push({ file, line, what: `a literal value for ${k}` });
        visit(x);
      }
    };
    visit(o);
  }
  return out;
}

/** Every file under `dir`, recursively. */
export function filesUnder(dir: string): string[] {
  return readdirSync(dir)
    .sort()
    .flatMap((name) => {
      const p = path.join(dir, name);
      return statSync(p).isDirectory() ? filesUnder(p) : [p];
    });
}

export function scanFiles(files: readonly string[]): SecretFinding[] {
  return files.flatMap((f) => scanText(f, readFileSync(f, 'utf8')));
}
