import { readFileSync } from 'node:fs';
import { mkdir, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Cluster, Redis } from 'ioredis';
import { InvalidRequestError, NotFoundError } from '../errors.js';
import { findLuaDir } from '../backend/redis/lua-assembler.js';
import { overrideId, OverrideTable, type OverrideLimitSpec, type TenantOverride } from '../limiter/overrides.js';
import type { DescriptorEntry } from '../limiter/types.js';
import type { Logger } from '../telemetry/logger.js';

/**
 * Where tenant overrides (src/limiter/overrides.ts) live, and their audit list.
 *
 * - Redis (standalone, Sentinel, Cluster): a hash of overrides, a version counter and a bounded
 *   audit list under one hash tag (`<CACHE_KEY_PREFIX>{meshlimit-admin}:overrides*`), changed by
 *   lua/override-change.lua. Every replica polls the version every OVERRIDES_POLL_MS (at most
 *   1 s) and reloads the hash when it moved, so a change made through any replica applies on all
 *   of them within a second. Polling one small key was chosen over pub/sub: it needs no second
 *   connection per replica (a subscribed ioredis client can send nothing else), survives a
 *   failover or a missed message without special cases, and costs one GET per interval.
 * - Memory: in this process, and in `DATA_DIR/overrides.json` when DATA_DIR is set (rewritten
 *   whole through a temporary file and a rename, so a crash never leaves half a file).
 *
 * Polling failures keep the last table (a Redis outage does not drop the overrides); the first
 * failure and the recovery are logged, not every poll.
 */

/** One change, as the audit list and the log line record it. */
export interface AuditEntry {
  readonly at: string;
  /** The caller: the admin token's fingerprint (or `anonymous`) and the peer address. */
  readonly who: string;
  readonly action: 'set' | 'remove';
  readonly domain: string;
  readonly entries: readonly DescriptorEntry[];
  readonly new: OverrideLimitSpec | null;
  readonly old: OverrideLimitSpec | null;
}

export interface OverrideChange {
  readonly domain: string;
  readonly entries: readonly DescriptorEntry[];
  readonly limit: OverrideLimitSpec;
}

export interface OverrideStore {
  readonly kind: 'memory' | 'redis';
  /** The table the limiter reads (swapped whole on every change seen). */
  current(): OverrideTable;
  /** Sets (or changes) one override; resolves with the audit entry. */
  set(change: OverrideChange, who: string): Promise<AuditEntry>;
  /** Removes one override; NotFoundError when there is none. */
  remove(domain: string, entries: readonly DescriptorEntry[], who: string): Promise<AuditEntry>;
  /** The audit list, newest first. */
  audit(): Promise<AuditEntry[]>;
  /** Called after the table changed (here or, with Redis, on another replica). */
  onChange(listener: () => void): void;
  close(): Promise<void>;
}

export interface OverrideStoreOptions {
  readonly max: number;
  readonly auditMax: number;
  readonly logger?: Logger | undefined;
}

function logChange(logger: Logger | undefined, entry: AuditEntry): void {
  logger?.info({ audit: entry }, `tenant override ${entry.action === 'set' ? 'set' : 'removed'}`);
}

/** The override as stored and listed, with who set it and when. */
function record(change: OverrideChange, at: string, who: string): TenantOverride {
  return { domain: change.domain, entries: change.entries, limit: change.limit, setAt: at, setBy: who };
}

/** The memory backend's store: in-process, and in DATA_DIR/overrides.json when DATA_DIR is set. */
export class MemoryOverrideStore implements OverrideStore {
  readonly kind = 'memory';
  private table = OverrideTable.EMPTY;
  private readonly byId = new Map<string, TenantOverride>();
  private log: AuditEntry[] = [];
  private readonly listeners: (() => void)[] = [];
  private readonly file: string | undefined;
  /** Writes are chained so two changes never interleave their files. */
  private writing: Promise<void> = Promise.resolve();

  constructor(private readonly options: OverrideStoreOptions & { readonly dataDir?: string | undefined }) {
    this.file = options.dataDir === undefined ? undefined : join(options.dataDir, 'overrides.json');
    if (this.file !== undefined) this.load(this.file);
  }

  private load(file: string): void {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw new Error(`DATA_DIR: cannot read ${file}: ${(err as Error).message}`);
    }
    let data: { overrides?: TenantOverride[]; audit?: AuditEntry[] };
    try {
      data = JSON.parse(text) as typeof data;
    } catch (err) {
      throw new Error(`DATA_DIR: ${file} is not valid JSON (${(err as Error).message}); move it away to start without its overrides`);
    }
    for (const o of data.overrides ?? []) this.byId.set(overrideId(o.domain, o.entries), o);
    this.log = (data.audit ?? []).slice(0, this.options.auditMax);
    this.table = new OverrideTable([...this.byId.values()]);
  }

  current(): OverrideTable {
    return this.table;
  }

  set(change: OverrideChange, who: string): Promise<AuditEntry> {
    const id = overrideId(change.domain, change.entries);
    const old = this.byId.get(id);
    if (old === undefined && this.byId.size >= this.options.max)
      return Promise.reject(
        new InvalidRequestError(`${this.byId.size} tenant overrides are held already (OVERRIDES_MAX); remove one first`),
      );
    const at = new Date().toISOString();
    this.byId.set(id, record(change, at, who));
    return this.changed({
      at,
      who,
      action: 'set',
      domain: change.domain,
      entries: change.entries,
      new: change.limit,
      old: old?.limit ?? null,
    });
  }

  remove(domain: string, entries: readonly DescriptorEntry[], who: string): Promise<AuditEntry> {
    const id = overrideId(domain, entries);
    const old = this.byId.get(id);
    if (old === undefined) return Promise.reject(new NotFoundError('there is no tenant override for this domain and descriptor'));
    this.byId.delete(id);
    return this.changed({ at: new Date().toISOString(), who, action: 'remove', domain, entries, new: null, old: old.limit });
  }

  private async changed(entry: AuditEntry): Promise<AuditEntry> {
    this.log.unshift(entry);
    if (this.log.length > this.options.auditMax) this.log.length = this.options.auditMax;
    this.table = new OverrideTable([...this.byId.values()]);
    logChange(this.options.logger, entry);
    for (const l of this.listeners) l();
    if (this.file !== undefined) {
      const file = this.file;
      const text = JSON.stringify({ overrides: [...this.byId.values()], audit: this.log }, null, 1);
      this.writing = this.writing.then(() => persist(file, text));
      await this.writing;
    }
    return entry;
  }

  audit(): Promise<AuditEntry[]> {
    return Promise.resolve([...this.log]);
  }

  onChange(listener: () => void): void {
    this.listeners.push(listener);
  }

  async close(): Promise<void> {
    await this.writing.catch(() => undefined);
  }
}

async function persist(file: string, text: string): Promise<void> {
  const dir = join(file, '..');
  await mkdir(dir, { recursive: true });
  const tmp = `${file}.${process.pid}.tmp`;
  await writeFile(tmp, text, { mode: 0o600 });
  await rename(tmp, file);
}

/** The Redis store (standalone, Sentinel or Cluster); see the module doc. */
export class RedisOverrideStore implements OverrideStore {
  readonly kind = 'redis';
  private table = OverrideTable.EMPTY;
  private readonly listeners: (() => void)[] = [];
  private readonly keys: { readonly hash: string; readonly version: string; readonly audit: string };
  private readonly script: string;
  private version: string | null | undefined = undefined;
  private readonly timer: NodeJS.Timeout;
  private polling: Promise<void> | undefined;
  private failing = false;

  constructor(
    private readonly client: Redis | Cluster,
    keyPrefix: string,
    private readonly options: OverrideStoreOptions & { readonly pollMs: number },
  ) {
    const base = `${keyPrefix}{meshlimit-admin}:overrides`;
    this.keys = { hash: base, version: `${base}:version`, audit: `${base}:audit` };
    this.script = readFileSync(join(findLuaDir(), 'override-change.lua'), 'utf8');
    this.timer = setInterval(() => void this.poll(), options.pollMs);
    this.timer.unref();
  }

  /** Reloads the table when the version moved; concurrent callers share one poll. */
  poll(): Promise<void> {
    this.polling ??= this.reload().finally(() => (this.polling = undefined));
    return this.polling;
  }

  private async reload(): Promise<void> {
    try {
      const version = await this.client.get(this.keys.version);
      if (version === this.version) return;
      const all = await this.client.hgetall(this.keys.hash);
      const list: TenantOverride[] = [];
      for (const [id, text] of Object.entries(all)) {
        const o = parseOverride(text);
        if (o === undefined)
          this.options.logger?.warn({ key: this.keys.hash, field: id }, 'ignoring an unreadable tenant override in Redis');
        else list.push(o);
      }
      // Listeners (the over-limit cache's clearing) only hear of a change: a first load that finds
      // no overrides, as the table started, changes nothing.
      const changed = this.table.size > 0 || list.length > 0;
      this.table = new OverrideTable(list);
      this.version = version;
      if (this.failing) this.options.logger?.info('tenant overrides: Redis answers again');
      this.failing = false;
      if (changed) for (const l of this.listeners) l();
    } catch (err) {
      if (!this.failing)
        this.options.logger?.warn({ err }, 'tenant overrides: cannot read them from Redis; the last ones seen stay in force');
      this.failing = true;
    }
  }

  current(): OverrideTable {
    return this.table;
  }

  async set(change: OverrideChange, who: string): Promise<AuditEntry> {
    const at = new Date().toISOString();
    const value = JSON.stringify(record(change, at, who));
    return this.change(change.domain, change.entries, value, {
      at,
      who,
      action: 'set',
      domain: change.domain,
      entries: change.entries,
      new: change.limit,
    });
  }

  remove(domain: string, entries: readonly DescriptorEntry[], who: string): Promise<AuditEntry> {
    return this.change(domain, entries, '', { at: new Date().toISOString(), who, action: 'remove', domain, entries, new: null });
  }

  private async change(
    domain: string,
    entries: readonly DescriptorEntry[],
    value: string,
    entry: Omit<AuditEntry, 'old'>,
  ): Promise<AuditEntry> {
    const head = JSON.stringify(entry).slice(0, -1);
    const { hash, version, audit } = this.keys;
    const reply = (await this.client.eval(
      this.script,
      3,
      hash,
      version,
      audit,
      overrideId(domain, entries),
      value,
      head,
      String(this.options.auditMax),
      String(this.options.max),
    )) as [number, string | null];
    const [status, oldText] = reply;
    if (status === 0) throw new NotFoundError('there is no tenant override for this domain and descriptor');
    if (status === -1)
      throw new InvalidRequestError(`${this.options.max} tenant overrides are held already (OVERRIDES_MAX); remove one first`);
    const done: AuditEntry = { ...entry, old: (oldText ? parseOverride(oldText)?.limit : undefined) ?? null };
    logChange(this.options.logger, done);
    await this.poll();
    return done;
  }

  async audit(): Promise<AuditEntry[]> {
    const list = await this.client.lrange(this.keys.audit, 0, this.options.auditMax - 1);
    const out: AuditEntry[] = [];
    for (const text of list) {
      try {
        const e = JSON.parse(text) as AuditEntry & { old: TenantOverride | null };
        out.push({ ...e, old: e.old === null ? null : e.old.limit });
      } catch {
        // An unreadable entry (written by something else) is skipped, not fatal.
      }
    }
    return out;
  }

  onChange(listener: () => void): void {
    this.listeners.push(listener);
  }

  close(): Promise<void> {
    clearInterval(this.timer);
    return (this.polling ?? Promise.resolve()).catch(() => undefined);
  }
}

/** A stored override, or undefined when the text is not one (a foreign or corrupted value). */
function parseOverride(text: string): TenantOverride | undefined {
  try {
    const o = JSON.parse(text) as TenantOverride;
    if (typeof o.domain !== 'string' || !Array.isArray(o.entries) || typeof o.limit !== 'object' || o.limit === null) return undefined;
    return o;
  } catch {
    return undefined;
  }
}
