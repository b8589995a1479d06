/**
 * The layers of voxops, from the top down. Imports only point down, never sideways between role
 * drivers, and never in a circle. CI runs this (npm run lint:deps).
 *   cli, report  ->  engine  ->  roles  ->  release, plan, commands  ->  exec  ->  config  ->  base
 * base: errors.ts, events.ts, clock.ts, wait.ts, text.ts, redact.ts
 */
const layers = [
  ['base', '^src/(errors|events|clock|wait|text|redact)\\.ts$'],
  ['config', '^src/config/'],
  ['exec', '^src/exec/'],
  ['commands', '^src/commands/'],
  ['plan', '^src/plan/'],
  ['release', '^src/release/'],
  ['roles', '^src/roles/'],
  ['engine', '^src/engine/'],
  ['report', '^src/report/'],
  ['cli', '^src/cli/'],
];
// what each layer may import besides itself and base
const allowed = {
  config: [],
  exec: ['config'],
  commands: ['exec', 'config'],
  plan: ['commands', 'exec', 'config'],
  release: ['commands', 'exec', 'config'],
  roles: ['release', 'plan', 'commands', 'exec', 'config'],
  engine: ['roles', 'release', 'plan', 'commands', 'exec', 'config'],
  report: [],
  cli: ['engine', 'report', 'roles', 'release', 'plan', 'commands', 'exec', 'config'],
  base: [],
};
const pathOf = Object.fromEntries(layers);
const forbidden = layers
  .filter(([name]) => name !== 'base')
  .map(([name, path]) => ({
    name: `${name}-imports-only-down`,
    severity: 'error',
    comment: `${name} may import only: ${['itself', 'base', ...allowed[name]].join(', ')}`,
    from: { path },
    to: { path: '^src/', pathNot: [path, pathOf.base, ...allowed[name].map((l) => pathOf[l])] },
  }));

module.exports = {
  forbidden: [
    ...forbidden,
    {
      name: 'base-imports-nothing-above',
      severity: 'error',
      from: { path: pathOf.base },
      to: { path: '^src/', pathNot: pathOf.base },
    },
    {
      name: 'drivers-stay-apart',
      severity: 'error',
      comment: 'a role folder imports only its own files, roles/shared and roles/contract.ts',
      from: { path: '^src/roles/([^/]+)/' },
      to: { path: '^src/roles/([^/]+)/', pathNot: ['^src/roles/$1/', '^src/roles/shared/'] },
    },
    { name: 'no-circular', severity: 'error', from: {}, to: { circular: true } },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    includeOnly: '^src/',
  },
};
