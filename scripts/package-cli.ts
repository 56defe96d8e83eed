// `npm run package-cli`: the `airlock` CLI as an installable npm package. esbuild bundles
// cli/airlock.ts and everything it imports into one ES module (no TypeScript at run time, no
// runtime dependencies: Node refuses to strip types under node_modules), then `npm pack` writes
// the tarball to dist/. The last line printed is the tarball's path:
//   npm install -g "$(npm run --silent package-cli | tail -n1)"
import { execFileSync } from 'node:child_process';
import { chmodSync, copyFileSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const dist = join(root, 'dist');
const staging = join(dist, 'airlock-cli');

const project = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string; license: string; description: string; engines: { node: string } };

rmSync(staging, { recursive: true, force: true });
mkdirSync(staging, { recursive: true });

const bundle = { bundle: true, platform: 'node', format: 'esm', target: 'node24', minify: true, legalComments: 'external', logLevel: 'warning' } as const;
const result = await build({
  ...bundle,
  entryPoints: [join(root, 'cli', 'airlock.ts')],
  outfile: join(staging, 'airlock.mjs'),
  // Bundled CommonJS dependencies call require() for Node built-ins.
  banner: { js: "import { createRequire as __airlockCreateRequire } from 'node:module'; const require = __airlockCreateRequire(import.meta.url);" },
  metafile: true,
});
chmodSync(join(staging, 'airlock.mjs'), 0o755);
const bytes = Object.values(result.metafile.outputs).reduce((sum, output) => sum + output.bytes, 0);
process.stderr.write(`[package-cli] bundled cli/airlock.ts into airlock.mjs (${(bytes / 1024 / 1024).toFixed(1)} MiB)\n`);
// What kubeconfigs run: answers from the token cache, else loads airlock.mjs beside it (cli/airlock-token.ts).
await build({ ...bundle, entryPoints: [join(root, 'cli', 'airlock-token.ts')], outfile: join(staging, 'airlock-token.mjs') });
chmodSync(join(staging, 'airlock-token.mjs'), 0o755);
// Where there is a /bin/sh, kubeconfigs run this first: a cached token without starting Node (cli/airlock-token.sh).
copyFileSync(join(root, 'cli', 'airlock-token.sh'), join(staging, 'airlock-token.sh'));
chmodSync(join(staging, 'airlock-token.sh'), 0o755);

writeFileSync(
  join(staging, 'package.json'),
  `${JSON.stringify(
    {
      name: 'airlock-cli',
      version: project.version,
      description: `The airlock CLI: ${project.description}`,
      license: project.license,
      type: 'module',
      bin: { airlock: 'airlock.mjs' },
      engines: project.engines,
      files: ['airlock.mjs', 'airlock.mjs.LEGAL.txt', 'airlock-token.mjs', 'airlock-token.sh', 'README.md'],
    },
    null,
    2,
  )}\n`,
);
copyFileSync(join(root, 'docs', 'cli-package.md'), join(staging, 'README.md'));

const packed = execFileSync('npm', ['pack', '--json', '--pack-destination', dist], { cwd: staging, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
const [{ filename }] = JSON.parse(packed) as [{ filename: string }];
process.stdout.write(`${join(dist, filename)}\n`);
