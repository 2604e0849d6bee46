// ESLint: typescript-eslint's strict rules, with type information for the
// rules that need it (promises nobody awaits or handles), the house rule that
// only core/clock.ts and core/random.ts touch real time and randomness in the
// proxy, rollout, state and admin code, and the plane boundaries: the data
// plane imports nothing from the control plane, and core/ imports nothing of ours.
import js from '@eslint/js'
import globals from 'globals'
import tseslint from 'typescript-eslint'

const injected = 'is read through the injected Clock / Random (src/core/clock.ts, src/core/random.ts) so tests stay deterministic'
const controlPlane = ['analysis', 'rollout', 'state', 'admin', 'cli', 'config', 'events', 'demo', 'cluster', 'probes', 'webhooks']

export default tseslint.config(
  { ignores: ['dist/', 'coverage/', '.tap/', 'node_modules/'] },
  js.configs.recommended,
  ...tseslint.configs.strict,
  {
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    rules: {
      // Tests and bench assert on shapes they just checked; `!` there is deliberate.
      '@typescript-eslint/no-non-null-assertion': 'off',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      // A promise nobody awaits loses its rejection; `void` marks the ones that are fire-and-forget on purpose.
      // tap's t.test() returns a promise the runner itself awaits.
      '@typescript-eslint/no-floating-promises': ['error', { allowForKnownSafePromises: [{ from: 'package', package: '@tapjs/core', name: 'PromiseWithSubtest' }] }],
      '@typescript-eslint/no-misused-promises': ['error', { checksVoidReturn: { arguments: false, properties: false } }],
    },
  },
  {
    files: ['**/*.js', '**/*.mjs'],
    ...tseslint.configs.disableTypeChecked,
  },
  {
    files: ['src/{proxy,routing,stats,rollout,state,admin,config,probes,webhooks}/**/*.ts', 'src/app.ts'],
    rules: {
      'no-restricted-properties': [
        'error',
        { object: 'Date', property: 'now', message: `time ${injected}` },
        { object: 'Math', property: 'random', message: `randomness ${injected}` },
        { object: 'performance', property: 'now', message: `time ${injected}` },
      ],
      'no-restricted-globals': [
        'error',
        { name: 'setTimeout', message: `scheduling ${injected}` },
        { name: 'setInterval', message: `scheduling ${injected}` },
      ],
    },
  },
  {
    files: ['src/{proxy,routing,stats}/**/*.ts'],
    rules: {
      '@typescript-eslint/no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              group: controlPlane.map((dir) => `../${dir}/*`),
              allowTypeImports: true,
              message: 'the data plane imports nothing from the control plane (types excepted): it reads a published snapshot and writes into preallocated stats',
            },
            { group: ['../app.js', '../control-plane.js'], message: 'the data plane does not reach the wiring' },
          ],
        },
      ],
    },
  },
  {
    files: ['src/core/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', { patterns: [{ group: ['../*'], message: 'core/ imports nothing of ours: every other folder may import it' }] }],
    },
  },
  {
    // The dashboard's script runs in the browser (a module script, inlined
    // into GET /): browser globals, uPlot (inlined before it) and no Node.
    // Its types are checked by tsconfig.dashboard.json (`// @ts-check`, JSDoc).
    files: ['src/admin/dashboard/**/*.js'],
    languageOptions: {
      ecmaVersion: 2022,
      sourceType: 'module',
      globals: { ...globals.browser, uPlot: 'readonly' },
    },
    rules: {
      'no-restricted-syntax': [
        'error',
        { selector: "AssignmentExpression[left.property.name='innerHTML']", message: 'API strings go in as text: use textContent or append()' },
        { selector: "AssignmentExpression[left.property.name='outerHTML']", message: 'API strings go in as text: use textContent or append()' },
        { selector: "CallExpression[callee.property.name='insertAdjacentHTML']", message: 'API strings go in as text: use textContent or append()' },
        { selector: "CallExpression[callee.property.name='write'][callee.object.name='document']", message: 'API strings go in as text: use textContent or append()' },
      ],
      'no-eval': 'error',
      'no-implied-eval': 'error',
    },
  },
)
