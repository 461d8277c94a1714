// @ts-check
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

/**
 * The linter, run by `npm test` (npm run lint). Formatting is prettier's job (.prettierrc.json);
 * these rules catch mistakes and keep functions and files small enough to read. Type-aware rules
 * are off: they would triple the run time for little here, where `tsc --strict` already runs.
 */
export default tseslint.config(
  { ignores: ['node_modules/', 'dist/', 'coverage/', 'benchmarks/.work/', 'benchmarks/results/', 'test/fixtures/lint/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    linterOptions: { reportUnusedDisableDirectives: 'error' },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' }],
      '@typescript-eslint/consistent-type-imports': ['error', { fixStyle: 'inline-type-imports' }],
      // `x == null` (null or undefined) is the one loose comparison allowed.
      eqeqeq: ['error', 'always', { null: 'ignore' }],
      'no-console': 'off',
      // A `let` assigned once but read earlier by a closure (wiring that refers forward) stays a let.
      'prefer-const': ['error', { ignoreReadBeforeAssign: true }],
    },
  },
  {
    // Plain Node scripts (CommonJS config, the CLI launcher, npm test's prerequisites check).
    files: ['**/*.cjs', 'bin/**/*.js', 'test/prerequisites.mjs'],
    languageOptions: {
      globals: { module: 'readonly', require: 'readonly', process: 'readonly', __dirname: 'readonly', console: 'readonly' },
    },
  },
  {
    // The web console (console/): plain browser JavaScript, served as is.
    files: ['console/**/*.js'],
    languageOptions: {
      globals: {
        document: 'readonly',
        window: 'readonly',
        Node: 'readonly',
        fetch: 'readonly',
        sessionStorage: 'readonly',
        confirm: 'readonly',
        setInterval: 'readonly',
        encodeURIComponent: 'readonly',
      },
    },
  },
  {
    // The service: small functions and files (STYLE.md, "Small files with one reason to change").
    // A file that must be longer says why in its first lines, in the disable comment's reason.
    files: ['src/**/*.ts'],
    rules: {
      'max-lines-per-function': ['error', { max: 80, skipBlankLines: false, skipComments: false, IIFEs: true }],
      'max-lines': ['error', { max: 400, skipBlankLines: false, skipComments: false }],
      'no-console': 'error',
    },
  },
);
