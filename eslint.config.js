// ESLint (flat config): typescript-eslint's recommended rules over the product and its tests.
// Formatting is prettier's job (.prettierrc.json); this file is only about code that is wrong.
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/', 'node_modules/', '.lab/', 'coverage/', 'test/lab/releases/'] },
  ...tseslint.configs.recommended,
  {
    // tests build and poke at arbitrary inventory documents and JSON answers on purpose
    files: ['test/**/*.ts'],
    rules: { '@typescript-eslint/no-explicit-any': 'off' },
  },
  {
    rules: {
      // `_name` marks a parameter or destructured field that is deliberately unused
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_', destructuredArrayIgnorePattern: '^_' },
      ],
    },
  },
);
