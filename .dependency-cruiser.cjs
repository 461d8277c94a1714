/**
 * The layers of src/, enforced by `npm test` (npm run lint:layers), the way Go's ban on import
 * cycles keeps envoyproxy/ratelimit layered and a crate split keeps limitador's library apart
 * from its server. Inner to outer:
 *
 *   errors.ts, util/          leaves: import nothing of meshlimit (util may use errors.ts)
 *   limiter/                  the domain: descriptors -> limits -> decisions, algorithms, keys,
 *                             and the ports it needs (limiter/ports.ts)
 *   config/  backend/         implement the limiter's ports (ConfigSource, Backend)
 *   resolve/                  descriptor resolution; reads config's types
 *   quota/                    RLQS quota division (allocation rule, memory and Redis stores);
 *                             reads the domain and builds on backend/'s Redis connections
 *   telemetry/                metrics, logs, tracing; maps every other layer's events
 *   server/  client/  xds/    transports, outermost but for the composition (xds/ is the xDS
 *                             client that feeds config/ from a management server)
 *   settings/, app.ts, main.ts, cli.ts, cluster.ts, lifecycle.ts, config-source.ts, sample/
 *                             the composition: settings, wiring, processes, the demo
 *
 * A dependency may only point inwards. Every rule names what it forbids; a violation prints the
 * rule and both files (`error <rule>: <from> → <to>`).
 */
const ROOT_FILES = '^src/(app|main|cli|cluster|lifecycle|config-source)\\.ts$|^src/cli/';
const forbid = (name, comment, from, to) => ({ name, comment, severity: 'error', from: { path: from }, to: { path: to } });

module.exports = {
  forbidden: [
    {
      name: 'no-circular',
      comment: 'A module cycle: the two modules can only be understood (and loaded) together. Move the shared part to the inner one.',
      severity: 'error',
      from: {},
      to: { circular: true },
    },
    {
      name: 'no-folder-cycle',
      comment: 'Two folders import each other. Declare the shared type in the inner folder (a port the outer one implements).',
      severity: 'error',
      scope: 'folder',
      // Folders under src/ (src/ itself holds the composition root and errors.ts, which every
      // layer may import; its files are layered by the rules below instead).
      from: { path: '^src/[^/]+' },
      to: { path: '^src/[^/]+', circular: true },
    },
    forbid(
      'limiter-is-the-domain',
      'limiter/ (the domain) imports only itself, errors.ts and util/: ports it needs are declared in limiter/ports.ts and implemented outside.',
      '^src/limiter/',
      '^src/(?!limiter/|errors\\.ts$|util/)',
    ),
    forbid(
      'leaves-stay-leaves',
      'errors.ts and util/ import nothing of meshlimit but errors.ts.',
      '^src/(errors\\.ts$|util/)',
      '^src/(?!errors\\.ts$|util/)',
    ),
    forbid(
      'config-implements-a-port',
      'config/ depends only on the domain (limiter/), errors.ts and util/.',
      '^src/config/',
      '^src/(?!config/|limiter/|errors\\.ts$|util/)',
    ),
    forbid(
      'backend-implements-a-port',
      'backend/ depends only on the domain (limiter/), errors.ts and util/; tracing and metrics are injected as hooks.',
      '^src/backend/',
      '^src/(?!backend/|limiter/|errors\\.ts$|util/)',
    ),
    forbid(
      'resolve-reads-config',
      'resolve/ depends on the domain and on config/ types only.',
      '^src/resolve/',
      '^src/(?!resolve/|config/|limiter/|errors\\.ts$|util/)',
    ),
    forbid(
      'quota-below-transports',
      'quota/ (RLQS quota division and its stores) depends only on the domain, backend/ (Redis connections), errors.ts and util/; the RLQS service in server/ uses it.',
      '^src/quota/',
      '^src/(?!quota/|limiter/|backend/|errors\\.ts$|util/)',
    ),
    forbid(
      'telemetry-below-transports',
      "telemetry/ maps the inner layers' events; transports and the composition use it, never the reverse.",
      '^src/telemetry/',
      '^src/(server|client|xds|sample|settings)/|' + ROOT_FILES,
    ),
    forbid(
      'server-is-a-transport',
      'server/ never reaches into the composition, the clients or the samples.',
      '^src/server/',
      '^src/(client|xds|sample|settings)/|' + ROOT_FILES,
    ),
    forbid(
      'xds-is-a-transport',
      'xds/ (the xDS client) decodes the wire and hands config/ plain resources; it never reaches into the other transports, the backends, telemetry or the composition.',
      '^src/xds/',
      '^src/(?!xds/|config/|limiter/|errors\\.ts$|util/)',
    ),
    forbid(
      'client-is-a-transport',
      'client/ (the typed RLS client) shares only the protos and the domain types with the service.',
      '^src/client/',
      '^src/(backend|config|resolve|telemetry|xds|sample|settings)/|^src/server/(?!grpc/protos\\.ts$)|' + ROOT_FILES,
    ),
    forbid(
      'settings-below-the-root',
      'settings/ declares and parses the environment; the composition reads it, settings never reads the composition or transports.',
      '^src/settings/',
      '^src/(server|client|xds|sample)/|' + ROOT_FILES,
    ),
    forbid('nothing-imports-samples', 'sample/ is the demo; the service never depends on it.', '^src/(?!sample/)', '^src/sample/'),
    forbid('src-never-imports-tests', 'src/ ships; test/ and benchmarks/ do not.', '^src/', '^(test|benchmarks)/'),
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '^(node_modules|dist)/' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: {
      exportsFields: ['exports'],
      conditionNames: ['import', 'require', 'node', 'default'],
      extensions: ['.ts', '.js'],
    },
  },
};
