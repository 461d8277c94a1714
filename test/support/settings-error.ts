import { loadSettings } from '../../src/settings/index.js';

/** The message loadSettings throws for `env`; fails the test when it loads. */
export function settingsErrorOf(env: Record<string, string>): string {
  try {
    loadSettings(env);
  } catch (err) {
    return (err as Error).message;
  }
  throw new Error('loadSettings did not throw');
}
