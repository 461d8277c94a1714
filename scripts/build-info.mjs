// Run by `npm run build` after tsc: records which git tree dist/ was built from in
// dist/build-info.json (read by src/util/build-info.ts for --version, the start-up log line and
// the meshlimit_build_info metric). Without git or outside a clone (a Docker build stage), it
// writes no commit: the version alone is still known from package.json.
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';

const git = (...args) => {
  try {
    return execFileSync('git', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], timeout: 5000 }).trim();
  } catch {
    return undefined;
  }
};
const info = { gitDescribe: git('describe', '--tags', '--always', '--dirty'), commit: git('rev-parse', 'HEAD') };
writeFileSync(path.join(import.meta.dirname, '../dist/build-info.json'), `${JSON.stringify(info)}\n`);
