// ESLint: typescript-eslint's strict rules without type information (fast),
// plus the house rule that only core/clock.ts and core/random.ts touch real
// time and randomness in the proxy, rollout, state and admin code.
import js from '@eslint/js'
import tseslint from 'typescript-eslint'

const injected = 'is read through the injected Clock / Random (src/core/clock.ts, src/core/random.ts) so tests stay deterministic'

export default tseslint.config(
  { ignores: ['dist/', 'coverage/', '.tap/', 'node_modules/'] },
  js.configs.recommended,
  ...tseslint.configs.strict,
  {
    rules: {
      // Tests and bench assert on shapes they just checked; `!` there is deliberate.
      '@typescript-eslint/no-non-null-assertion': 'off',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
    },
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
)
