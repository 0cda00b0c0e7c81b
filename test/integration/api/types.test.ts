// The public API as a user's TypeScript sees it: files that import 'kumo' (and its subpaths,
// through package.json "exports" and the built declarations in dist/) are compiled with the
// TypeScript compiler. A call with wrong field types or a misspelt field must not compile, and
// the errors must point at those fields; a correct call must compile cleanly.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import ts from 'typescript';
import { readmeBlock } from '../../helpers/readme.js';

const repo = process.env.KUMO_REPO ?? process.cwd();

const FILES: Record<string, string> = {
  // the README's TypeScript library example, exactly as printed (a module: top-level await using)
  'readme.ts': readmeBlock('<!-- readme-example:ts', 'ts'),
  // the README's JavaScript example, type-checked as TypeScript would see it
  'readme-js.ts': readmeBlock('<!-- readme-example:js', 'js'),
  // the example of issue 11: a number for image, a word for cpus, a misspelt memory
  'wrong-types.ts': `import { launch } from 'kumo';
export async function f() {
  await launch({ image: 42, cpus: 'lots', memroy: '2G' });
}
`,
  // TypeScript reports an unknown field only when the others type-check: the misspelling alone
  'misspelt.ts': `import { launch } from 'kumo';
export async function f() {
  await launch({ image: 'debian-12', cpus: 2, memroy: '2G' });
}
`,
  'wrong-values.ts': `import { launch, createInstance, kumoPaths } from 'kumo';
export async function f() {
  await launch({ accel: 'fast', timeout: 'soon', ports: [80] });
  await createInstance(kumoPaths(), { name: 'a', disk: 'big' });
}
`,
  'internals.ts': `import { sfdiskScript, IN_CHROOT, writeRecord, buildQemuArgv } from 'kumo';
export const x = [sfdiskScript, IN_CHROOT, writeRecord, buildQemuArgv];
`,
  'correct.ts': `import { launch, createInstance, kumoPaths, isKumoError, ERROR_CODES, diskInfo, type LaunchOptions, type KumoEvent } from 'kumo';
import { sniffFormat, qemuImg } from 'kumo/disk';
import { buildIso, composeUserData, classifyUserData } from 'kumo/seed';
import { loadCatalog, registerDiskSource } from 'kumo/image';
import { listElements, planLayout } from 'kumo/builder';
import { sshArgv } from 'kumo/guest';
import { registerDriver, getDriver, driverNames, type Driver } from 'kumo/driver';

export async function f(): Promise<void> {
  const events: KumoEvent[] = [];
  const o: LaunchOptions = { image: 'debian-12', cpus: 2, memory: '2G', disk: 20, timeout: '10m', ports: ['8080:80', { host: 5353, guest: 53, proto: 'udp' }], accel: 'auto', onEvent: (e) => events.push(e) };
  await using vm = await launch(o);
  const r = await vm.exec('uname -a');
  console.log(r.stdout, await diskInfo('/tmp/x.qcow2'));
  await createInstance(kumoPaths({ home: '/tmp/kumo' }), { name: 'web-1', image: 'debian-12', memory: 1024, cpus: '2', userData: '#cloud-config\\n' });
  try {
    await launch({ image: 'deb12', driver: 'libvirt', network: 'network:default', firmware: 'uefi', seedFormat: 'configdrive' });
  } catch (e) {
    if (isKumoError(e)) console.log(e.code, e.hint, ERROR_CODES.DISK_FULL.kind);
  }
  const d: Driver = await getDriver(driverNames()[0]!);
  console.log(d, registerDriver, sniffFormat, qemuImg, buildIso, composeUserData, classifyUserData, loadCatalog, registerDiskSource, listElements, planLayout, sshArgv);
}
`,
};

interface Diag {
  file: string;
  at: string;
  message: string;
}

async function compile(): Promise<Diag[]> {
  // inside the package, so 'kumo' resolves to this package itself (a self-reference through "exports")
  const dir = await mkdtemp(join(repo, 'dist', '.api-types-'));
  try {
    for (const [name, text] of Object.entries(FILES)) await writeFile(join(dir, name), text);
    const program = ts.createProgram(
      Object.keys(FILES).map((n) => join(dir, n)),
      {
        module: ts.ModuleKind.NodeNext,
        moduleResolution: ts.ModuleResolutionKind.NodeNext,
        target: ts.ScriptTarget.ES2022,
        lib: ['lib.es2023.d.ts', 'lib.esnext.disposable.d.ts'],
        types: ['node'],
        typeRoots: [join(repo, 'node_modules', '@types')],
        strict: true,
        noEmit: true,
        skipLibCheck: true,
      },
    );
    return ts.getPreEmitDiagnostics(program).map((d) => ({
      file: d.file ? d.file.fileName.slice(dir.length + 1) : '(global)',
      at: d.file && d.start !== undefined ? d.file.text.slice(d.start, d.start + (d.length ?? 0)) : '',
      message: ts.flattenDiagnosticMessageText(d.messageText, '\n'),
    }));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

let diags: Promise<Diag[]> | undefined;
const of = async (file: string) => (await (diags ??= compile())).filter((d) => d.file === file);

test("launch({ image: 42, cpus: 'lots', memroy: '2G' }) does not compile: the errors name image and cpus", { timeout: 120_000 }, async () => {
  const d = await of('wrong-types.ts');
  assert.ok(d.length >= 2, JSON.stringify(d));
  assert.ok(d.some((x) => x.at === 'image' && /number.*not assignable to type 'string'/.test(x.message)), JSON.stringify(d));
  assert.ok(d.some((x) => x.at === 'cpus' && /"lots"/.test(x.message)), JSON.stringify(d));
});

test('a misspelt field does not compile, and the error names it', { timeout: 120_000 }, async () => {
  const d = await of('misspelt.ts');
  assert.equal(d.length, 1, JSON.stringify(d));
  assert.equal(d[0]!.at, 'memroy');
  assert.match(d[0]!.message, /'memroy' does not exist in type 'LaunchOptions'/);
});

test('wrong values of typed fields (accel, timeout, ports, disk) do not compile', { timeout: 120_000 }, async () => {
  const d = await of('wrong-values.ts');
  for (const field of ['accel', 'timeout', 'disk']) assert.ok(d.some((x) => x.at === field), `${field}: ${JSON.stringify(d)}`);
  assert.ok(d.some((x) => x.at === '80'), `ports: ${JSON.stringify(d)}`);
});

test("the README's library examples (TypeScript as printed, and the JavaScript one) compile cleanly against the built types", { timeout: 120_000 }, async () => {
  assert.match(FILES['readme.ts']!, /await using vm = await launch\(/);
  assert.match(FILES['readme-js.ts']!, /finally \{\n\s+await vm\.delete\(\);/);
  assert.deepEqual(await of('readme.ts'), []);
  assert.deepEqual(await of('readme-js.ts'), []);
});

/**
 * Opaque on purpose: a KumoError's details and cause (any error's; also as KumoErrorOptions), metadata the user attaches to
 * an image (kept as given), an image record's source facts (by kind) and a seed's extra
 * meta-data (written into the seed as given).
 */
const OPAQUE = /^((\w+Error|KumoErrorOptions)\.(details|cause|toJSON)|ImageRecord\.(source|metadata)|ImportOptions\.(source|metadata)|SeedSpec\.metaData)$/;

test("the exported option and result types have real fields: no 'unknown' but the few opaque ones", { timeout: 120_000 }, () => {
  const index = join(repo, 'dist', 'src', 'index.d.ts');
  const program = ts.createProgram([index], {
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    types: ['node'],
    typeRoots: [join(repo, 'node_modules', '@types')],
    skipLibCheck: true,
  });
  const checker = program.getTypeChecker();
  const mod = checker.getSymbolAtLocation(program.getSourceFile(index)!)!;
  const found: string[] = [];
  let looked = 0;
  for (const s of checker.getExportsOfModule(mod)) {
    const target = s.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(s) : s;
    const decl = target.declarations?.[0];
    if (!decl || !(ts.isInterfaceDeclaration(decl) || ts.isTypeAliasDeclaration(decl) || ts.isClassDeclaration(decl))) continue;
    for (const prop of checker.getPropertiesOfType(checker.getDeclaredTypeOfSymbol(target))) {
      looked++;
      const text = checker.typeToString(checker.getTypeOfSymbolAtLocation(prop, decl), undefined, ts.TypeFormatFlags.NoTruncation);
      if (/\bunknown\b/.test(text) && !OPAQUE.test(`${s.name}.${prop.name}`)) found.push(`${s.name}.${prop.name}: ${text}`);
    }
  }
  assert.ok(looked > 200, `only ${looked} fields looked at`);
  assert.deepEqual(found, []);
});

test("internals are not exported from 'kumo'", { timeout: 120_000 }, async () => {
  const d = await of('internals.ts');
  for (const name of ['sfdiskScript', 'IN_CHROOT', 'writeRecord', 'buildQemuArgv'])
    assert.ok(d.some((x) => x.at === name && /has no exported member/.test(x.message)), `${name}: ${JSON.stringify(d)}`);
});

test("a correct program (launch, createInstance, errors, the subpaths 'kumo/disk', 'kumo/seed', 'kumo/image', 'kumo/builder', 'kumo/guest', 'kumo/driver') compiles cleanly", { timeout: 120_000 }, async () => {
  assert.deepEqual(await of('correct.ts'), []);
  assert.deepEqual(await of('(global)'), []);
});

test("the package's entry points load, and 'kumo' exports a hand-picked list", async () => {
  const root = (await import('kumo' as string)) as Record<string, unknown>;
  assert.equal(typeof root.launch, 'function');
  const names = Object.keys(root);
  assert.ok(names.length < 120, `${names.length} names`);
  for (const internal of ['sfdiskScript', 'IN_CHROOT', 'writeRecord', 'buildQemuArgv', 'qemuFiles', 'macFor']) assert.ok(!names.includes(internal), internal);
  for (const sub of ['kumo/disk', 'kumo/seed', 'kumo/image', 'kumo/builder', 'kumo/guest', 'kumo/driver']) {
    const m = (await import(sub)) as Record<string, unknown>;
    assert.ok(Object.keys(m).length > 0, sub);
  }
});
