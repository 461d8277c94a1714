import { ConfigError, ConfigErrors } from '../errors.js';
import { DescriptorResolver, type DescriptorResolverOptions, type ResolutionConfigView } from './resolver.js';

export interface StartResolverOptions extends DescriptorResolverOptions {
  /** Subscribes to config swaps (the config store's `onChange`). */
  readonly onChange: (listener: (next: ResolutionConfigView) => void) => unknown;
  /** Where a reloaded config's resolution problems are reported. */
  readonly logger: { error(obj: object, msg: string): void; info(obj: object, msg: string): void; warn(obj: object, msg: string): void };
}

/**
 * A resolver prepared for the current config and kept prepared across reloads. A domain that can
 * never verify a token as configured (HS256 secret variable unset, broken JWKS file) stops
 * start-up: the returned promise rejects with a {@link ConfigError} (or {@link ConfigErrors})
 * naming the file and field. After a reload the same problem is logged and that domain limits
 * every caller by client address.
 */
export async function startResolver(options: StartResolverOptions): Promise<DescriptorResolver> {
  const resolver = new DescriptorResolver(options);
  const problems = await resolver.prepare();
  if (problems.length > 0) {
    resolver.close();
    const errs = problems.map((p) => new ConfigError(p.file, p.field, p.detail));
    throw errs.length === 1 ? errs[0]! : new ConfigErrors(errs);
  }
  options.onChange((next) => {
    void resolver.prepare(next).then((found) => {
      for (const p of found)
        options.logger.error(
          { domain: p.domain, error: p.message },
          'descriptor resolution cannot verify tokens; this domain limits every caller by client address',
        );
    });
  });
  return resolver;
}
