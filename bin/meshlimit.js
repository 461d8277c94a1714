#!/usr/bin/env node
// The `meshlimit` command (src/cli.ts, compiled to dist/ by `npm run build`; `npm start` builds).
// Runs the compiled code with plain node: no TypeScript loader to start on every call.
let cli;
try {
  cli = await import('../dist/cli.js');
} catch (err) {
  if (err?.code !== 'ERR_MODULE_NOT_FOUND' || !String(err.message).includes('dist/cli.js')) throw err;
  process.stderr.write('meshlimit: dist/ is not built yet; run `npm run build` first (`npm start` builds it too)\n');
  process.exit(2);
}
process.exitCode = await cli.runCli(process.argv.slice(2));
