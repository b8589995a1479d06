import { readFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';

/**
 * What `voxops --help` (or any mistyped command) loads before main knows the command: the static
 * imports reachable from src/cli/main.ts. The engine, the roles, ssh2, listr2 and xmlbuilder2 are
 * imported by main only after parsing; one static import of them here would put `--help` back to
 * several times a bare node's start-up (npm run bench:startup measures it).
 */
function staticImports(entry: string): { files: string[]; packages: string[] } {
  const files = new Set<string>();
  const packages = new Set<string>();
  const visit = (file: string) => {
    if (files.has(file)) return;
    files.add(file);
    const text = readFileSync(file, 'utf8');
    for (const [, typeOnly, specifier] of text.matchAll(/^(?:import|export)\s+(type\s+)?(?:[^'";]*?\sfrom\s+)?'([^']+)';/gm)) {
      if (typeOnly) continue;
      if (specifier!.startsWith('.')) visit(join(dirname(file), specifier!.replace(/\.js$/, '.ts')));
      else if (!specifier!.startsWith('node:')) packages.add(specifier!);
    }
  };
  visit(entry);
  return { files: [...files].map((f) => relative('.', f)).sort(), packages: [...packages].sort() };
}

describe('what the CLI loads before it knows the command', () => {
  const { files, packages } = staticImports('src/cli/main.ts');

  it('only the argument parser among the libraries', () => {
    expect(packages).toEqual(['yargs']);
  });

  it('no role, engine operation, executor or report code', () => {
    expect(
      files.filter(
        (f) =>
          /^src\/(roles|exec|report|commands|release|plan)\//.test(f) || (f.startsWith('src/engine/') && f !== 'src/engine/signals.ts'),
      ),
    ).toEqual([]);
    expect(files).not.toContain('src/cli/commands.ts');
    expect(files).not.toContain('src/config/inventory.ts');
  });

  it('sees imports written over several lines', () => {
    expect(files).toContain('src/cli/args.ts');
    expect(files).toContain('src/errors.ts');
  });
});
