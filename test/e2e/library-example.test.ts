/**
 * The library example of README.md, run exactly as the README prints it: the ```js block after
 * the `readme-example:js` marker is written to a .mjs file in a temporary project whose
 * node_modules/kumo is this package (so its `import { launch } from 'kumo'` is unchanged), and run
 * with node against the test image, imported under the name the example uses (deb12) into a
 * temporary KUMO_HOME. That is this file's one VM boot. `await using` (Symbol.asyncDispose) is
 * checked on a VM that is started without waiting for it to be ready (no boot wait).
 * The README's TypeScript example is compiled by test/integration/api/types.test.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, readdir, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { launch, importImage, ensureHome } from '../../src/index.js';
import { testImagePath } from '../helpers/test-image.js';
import { readmeBlock } from '../helpers/readme.js';

const repo = process.env.KUMO_REPO ?? process.cwd();

function node(args: string[], cwd: string, env: NodeJS.ProcessEnv): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const c = spawn(process.execPath, args, { cwd, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    c.stdout.on('data', (d) => (stdout += d));
    c.stderr.on('data', (d) => (stderr += d));
    c.on('error', reject);
    c.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

test("the README's JavaScript library example, run as printed: ready, exec (argv, check, a non-zero exit), status, deleted", async () => {
  const dir = await mkdtemp(join(tmpdir(), 'kumo-readme-'));
  try {
    const home = join(dir, 'home');
    const paths = await ensureHome({ home });
    await importImage(paths, testImagePath(), { name: 'deb12' });

    const project = join(dir, 'project');
    await mkdir(join(project, 'node_modules'), { recursive: true });
    await writeFile(join(project, 'package.json'), JSON.stringify({ name: 'readme-example', private: true, type: 'module' }));
    await symlink(repo, join(project, 'node_modules', 'kumo'), 'dir');
    const code = readmeBlock('<!-- readme-example:js', 'js');
    assert.match(code, /^import \{ launch \} from 'kumo';$/m, 'the example imports from the package name');
    await writeFile(join(project, 'example.mjs'), code);

    const r = await node(['example.mjs'], project, { KUMO_HOME: home });
    assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
    const lines = r.stdout.split('\n').filter(Boolean);
    assert.match(lines[0]!, /^Linux /);
    assert.deepEqual(lines.slice(1), ['hi from kumo', '3', 'running']);
    assert.deepEqual(await readdir(paths.instances), [], 'the finally block deleted the VM');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('await using: leaving the block deletes the VM (Symbol.asyncDispose; started without waiting for it to be ready)', async () => {
  const home = await mkdtemp(join(tmpdir(), 'kumo-lib-'));
  try {
    {
      await using vm = await launch({
        image: testImagePath(), // an alias such as 'debian-12' works the same way
        home, // leave out to use KUMO_HOME / ~/.local/share/kumo
        wait: false,
      });
      const st = await vm.status();
      assert.ok(['running', 'unknown'].includes(st.state), st.state);
      assert.deepEqual(await readdir(join(home, 'instances')), [vm.name]);
    } // <- Symbol.asyncDispose: the VM is stopped and deleted here
    assert.deepEqual(await readdir(join(home, 'instances')), []);
  } finally {
    await rm(home, { recursive: true, force: true });
  }
});
