import { SETTINGS } from './table.js';

/**
 * The README settings table, generated from {@link SETTINGS}: one row per variable with its
 * group, default and description. `test/unit/settings` checks the README lists every name.
 */
export function settingsMarkdownTable(): string {
  const cell = (s: string): string => s.replace(/\|/g, '\\|').replace(/\n/g, ' ');
  const rows = SETTINGS.map((s) => {
    const def = s.default === undefined ? '(unset)' : s.default === '' ? '(empty)' : `\`${s.default}\``;
    return `| \`${s.name}\` | ${s.group} | ${cell(def)} | ${cell(s.description)} |`;
  });
  return ['| Variable | Group | Default | Description |', '| --- | --- | --- | --- |', ...rows].join('\n') + '\n';
}
