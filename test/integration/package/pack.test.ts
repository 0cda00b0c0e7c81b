/**
 * The npm package, as a user gets it: `npm pack` in a fresh copy of the repository (its files as
 * a clone has them: no dist/, no node_modules/ of its own) builds dist/ through `prepack`, and the
 * tarball, installed into an empty folder, works there: `npx kumo --version`, the CLI finding its
 * catalog, elements and schema at the installed location, `import { launch } from 'kumo'` in plain
 * ESM JavaScript, and the types resolving for TypeScript.
 *
 * npm is the one bundled with this Node.js (run as `node npm-cli.js`); the install uses the npm
 * cache (--prefer-offline) for kumo's one dependency.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import ts from 'typescript';

const repo = process.env.KUMO_REPO ?? process.cwd();
const pkg = JSON.parse(readFileSync(join(repo, 'package.json'), 'utf8')) as { name: string; version: string };

/** The npm (and npx) that ship with the running Node.js. */
function npmBin(name: 'npm-cli.js' | 'npx-cli.js'): string {
  const node = realpathSync(process.execPath);
  for (const dir of [join(dirname(node), '..', 'lib', 'node_modules', 'npm', 'bin'), '/usr/share/nodejs/npm/bin', '/usr/lib/node_modules/npm/bin']) if (existsSync(join(dir, name))) return join(dir, name);
  throw new Error(`cannot find ${name} beside ${node}`);
}

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}
function run(argv: string[], cwd: string, env: NodeJS.ProcessEnv = {}): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, argv, { cwd, env: { ...process.env, npm_config_update_notifier: 'false', npm_config_fund: 'false', npm_config_audit: 'false', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}
const npm = (args: string[], cwd: string, env?: NodeJS.ProcessEnv) => run([npmBin('npm-cli.js'), ...args], cwd, env);
const npx = (args: string[], cwd: string, env?: NodeJS.ProcessEnv) => run([npmBin('npx-cli.js'), ...args], cwd, env);

/** A copy of the repository's own files, as a fresh clone has them (no dist/, node_modules/, logs). */
function copyRepo(to: string): void {
  const skip = new Set(['node_modules', 'dist', '.git', 'tmp']);
  cpSync(repo, to, {
    recursive: true,
    filter: (src) => {
      const rel = relative(repo, src);
      if (!rel) return true;
      const top = rel.split('/')[0]!;
      return !skip.has(top) && !rel.endsWith('.log') && !rel.split('/').includes('node_modules');
    },
  });
}

test('npm pack of a fresh copy builds dist/ (prepack); the tarball installed into an empty folder works: npx kumo, the catalog, elements and schema, import from plain JS, the types', { timeout: 600_000 }, async () => {
  const tmp = mkdtempSync(join(tmpdir(), 'kumo-pack-'));
  try {
    const src = join(tmp, 'src');
    copyRepo(src);
    assert.ok(!existsSync(join(src, 'dist')), 'the copy has no dist/');
    // the dev dependencies (typescript) as `npm ci` would install them; the copy is not the repo
    symlinkSync(join(repo, 'node_modules'), join(src, 'node_modules'), 'dir');

    const packed = await npm(['pack', '--json', '--pack-destination', tmp], src);
    assert.equal(packed.code, 0, packed.stderr);
    const [info] = JSON.parse(packed.stdout.slice(packed.stdout.indexOf('['))) as { filename: string; files: { path: string }[] }[];
    const files = info!.files.map((f) => f.path);
    for (const f of ['package.json', 'README.md', 'bin/kumo.js', 'dist/src/index.js', 'dist/src/index.d.ts', 'dist/src/cli/main.js', 'dist/src/cli/commands/schema.js', 'catalog/catalog.yaml', 'schema/instance-spec.schema.json', 'docs/instances.md', 'docs/library.md', 'elements/README.md'])
      assert.ok(files.includes(f), `the package lacks ${f}`);
    assert.ok(files.some((f) => f.startsWith('elements/debian/')), 'the elements');
    for (const f of files) assert.ok(!/^(dist\/test|dist\/bench|test|src|bench|node_modules|scripts)\//.test(f) && !f.endsWith('.ts') || f.endsWith('.d.ts'), `the package should not hold ${f}`);

    // an empty project installs the tarball
    const app = join(tmp, 'app');
    mkdirSync(app);
    writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'app', version: '1.0.0', private: true, type: 'module' }));
    const inst = await npm(['install', '--prefer-offline', '--no-audit', '--no-fund', join(tmp, info!.filename)], app);
    assert.equal(inst.code, 0, inst.stderr);
    const installed = join(app, 'node_modules', 'kumo');
    assert.ok(existsSync(join(installed, 'dist', 'src', 'index.js')));

    const home = join(tmp, 'home');
    const env = { KUMO_HOME: home };
    const version = await npx(['--offline', 'kumo', '--version'], app, env);
    assert.equal(version.code, 0, version.stderr);
    assert.equal(version.stdout.trim(), `kumo ${pkg.version}`);

    // the catalog (catalog/catalog.yaml), read from the installed package
    const cat = await npx(['--offline', 'kumo', 'image', 'list', '--catalog', '--json'], app, env);
    assert.equal(cat.code, 0, cat.stderr);
    assert.ok((JSON.parse(cat.stdout) as { alias: string }[]).some((a) => a.alias === 'debian-12'), cat.stdout);
    // the schema it prints is the file it ships
    const schema = await npx(['--offline', 'kumo', 'schema', 'instance-spec'], app, env);
    assert.equal(schema.code, 0, schema.stderr);
    assert.equal(schema.stdout, readFileSync(join(installed, 'schema', 'instance-spec.schema.json'), 'utf8'));
    // every command loads (the registry reads dist/src/cli/commands at the installed location)
    const help = await npx(['--offline', 'kumo', 'help'], app, env);
    assert.equal(help.code, 0, help.stderr);
    assert.match(help.stdout, /launch/);
    assert.match(help.stdout, /schema/);

    // plain ESM JavaScript: import { launch } from 'kumo'; the elements through 'kumo/builder'
    writeFileSync(
      join(app, 'check.mjs'),
      `import { launch, validateSpec } from 'kumo';
import { listElements, elementSearchPath, loadElementSet, requestedElements } from 'kumo/builder';
const found = listElements(elementSearchPath());
const set = loadElementSet(requestedElements('debian', undefined), elementSearchPath());
console.log(JSON.stringify({ launch: typeof launch, spec: validateSpec({ name: 'web' }).name, elements: Object.fromEntries(found), loaded: set.elements.map((e) => e.name) }));
`,
    );
    const js = await run(['check.mjs'], app, env);
    assert.equal(js.code, 0, js.stderr);
    const out = JSON.parse(js.stdout) as { launch: string; spec: string; elements: Record<string, string>; loaded: string[] };
    assert.equal(out.launch, 'function');
    assert.equal(out.spec, 'web');
    for (const e of ['debian', 'cloud-init', 'openssh-server']) {
      assert.ok(out.loaded.includes(e), `element ${e}: ${js.stdout}`);
      assert.ok(realpathSync(out.elements[e]!).startsWith(realpathSync(join(installed, 'elements'))), `element ${e} from ${out.elements[e]}`);
    }

    // TypeScript: the types resolve through "exports" of the installed package
    writeFileSync(
      join(app, 'check.ts'),
      `import { launch, type LaunchOptions, type ExecOptions } from 'kumo';
import type { DiskInfo } from 'kumo/disk';
const o: LaunchOptions = { image: 'debian-12', memory: '1G', ports: ['8080:80'] };
const e: ExecOptions = { check: true };
export async function f(d: DiskInfo): Promise<string> {
  const vm = await launch(o);
  try {
    return (await vm.exec(['uname', '-a'], e)).stdout + d.format;
  } finally {
    await vm.delete();
  }
}
// @ts-expect-error a misspelt field does not compile
export const bad: LaunchOptions = { imgae: 'x' };
`,
    );
    const program = ts.createProgram([join(app, 'check.ts')], {
      module: ts.ModuleKind.NodeNext,
      moduleResolution: ts.ModuleResolutionKind.NodeNext,
      target: ts.ScriptTarget.ES2022,
      types: ['node'],
      typeRoots: [join(repo, 'node_modules', '@types')],
      strict: true,
      noEmit: true,
      skipLibCheck: true,
    });
    const diags = ts.getPreEmitDiagnostics(program).map((d) => `${d.file ? relative(app, d.file.fileName) : ''}: ${ts.flattenDiagnosticMessageText(d.messageText, '\n')}`);
    assert.deepEqual(diags, []);
    // and they came from the installed package, not from the repository
    assert.ok(program.getSourceFiles().some((f) => f.fileName.startsWith(join(app, 'node_modules', 'kumo', 'dist', 'src'))));
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
});
