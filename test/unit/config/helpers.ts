import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'vitest';
import { ConfigError, ConfigErrors } from '../../../src/errors.js';
import { compileConfig, type CompileOptions } from '../../../src/config/compile.js';
import type { CompiledSnapshot } from '../../../src/config/compiled.js';

/** Absolute path of test/fixtures/config. */
export const FIXTURES = fileURLToPath(new URL('../../fixtures/config/', import.meta.url));

export const fixture = (...parts: string[]): string => join(FIXTURES, ...parts);

/** Compiles one in-memory file named `test.yaml`. */
export function compileText(text: string, options?: CompileOptions): CompiledSnapshot {
  return compileConfig([{ path: 'test.yaml', text }], options);
}

/** Runs `fn`, expects it to throw a ConfigError or ConfigErrors, and returns the individual errors. */
export async function configErrorsOf(fn: () => unknown): Promise<ConfigError[]> {
  let thrown: unknown;
  try {
    await fn();
  } catch (err) {
    thrown = err;
  }
  expect(thrown, 'expected a config error').toBeDefined();
  if (thrown instanceof ConfigErrors) return [...thrown.errors];
  expect(thrown).toBeInstanceOf(ConfigError);
  return [thrown as ConfigError];
}
