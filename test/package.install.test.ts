// The npm package as a user gets it: `npm pack`, `npm install <tarball>` into an empty project,
// then `unet --version` and `unet env` from node_modules/.bin. The install step runs the real
// native/build.mjs of the installed copy (libtorch detection, Node-API headers from the package's
// own dependencies, the flags and the stamp); only the compiler run is skipped when the
// repository's build/ holds an addon with the same stamp (same source, flags, libtorch and
// headers). UNET_LONG_TESTS=1 compiles it for real (minutes on 2 cores).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { pathToFileURL } from 'node:url';
import { ROOT } from './helpers/cli.js';

const dir = mkdtempSync(join(tmpdir(), 'unet-package-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { name: string; version: string; dependencies: Record<string, string> };
const long = process.env.UNET_LONG_TESTS === '1';

function sh(cmd: string, args: string[], cwd: string, env: Record<string, string> = {}) {
  const r = spawnSync(cmd, args, { cwd, encoding: 'utf8', env: { ...process.env, npm_config_loglevel: 'error', ...env }, timeout: 15 * 60_000 });
  return { code: r.status, out: `${r.stdout ?? ''}${r.stderr ?? ''}`, stdout: r.stdout ?? '' };
}

test('npm pack + npm install <tarball> into an empty project: unet --version and unet env work', { timeout: 20 * 60_000 }, (t) => {
  // 1. Pack (prepack builds dist/); the tarball holds what a user needs and nothing of the tests.
  const packed = sh('npm', ['pack', '--pack-destination', dir, '--json'], ROOT);
  assert.equal(packed.code, 0, packed.out);
  const tarball = join(dir, readdirSync(dir).find((n) => n.endsWith('.tgz')) as string);
  const list = sh('tar', ['tzf', tarball], dir).stdout.split('\n').filter(Boolean);
  for (const f of [
    'package/bin/unet.js',
    'package/dist/cli/main.js',
    'package/dist/web/app.js',
    'package/dist/web/index.html',
    'package/dist/web/ort-wasm-simd-threaded.wasm',
    'package/dist/web/ort-wasm-simd-threaded.mjs',
    'package/dist/dashboard/app.js',
    'package/dist/dashboard/app.css',
    'package/native/build.mjs',
    'package/native/runtime.cpp',
    'package/native/addon.h',
    'package/README.md',
    'package/LICENSE',
  ]) {
    assert.ok(list.includes(f), `${f} is in the package`);
  }
  assert.ok(!list.some((f) => f.startsWith('package/test/') || f.startsWith('package/src/') || f.endsWith('.tsbuildinfo')), 'no tests, sources or build caches');

  // 2. Install into an empty project; the install script builds (or, with the same stamp, copies) the addon.
  const app = join(dir, 'app');
  sh('mkdir', ['-p', app], dir);
  writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'app', private: true }));
  const t0 = performance.now();
  const inst = sh('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline', '--foreground-scripts', tarball], app, long ? {} : { UNET_ADDON_CACHE: join(ROOT, 'build') });
  const seconds = (performance.now() - t0) / 1000;
  assert.equal(inst.code, 0, inst.out);
  assert.match(inst.out, long ? /native build: wrote .*unet_torch\.node/ : /native build: (same source, flags and libtorch as .*; copied|wrote)/, inst.out);
  t.diagnostic(`npm install of the tarball: ${seconds.toFixed(0)} s (${long ? 'compiled' : 'addon reused by stamp'})`);
  const installed = join(app, 'node_modules', pkg.name);
  assert.ok(existsSync(join(installed, 'build', 'unet_torch.node')));

  // 3. The command, as `npx unet` runs it.
  const unet = join(app, 'node_modules', '.bin', 'unet');
  const v = sh(unet, ['--version'], app);
  assert.equal(v.code, 0, v.out);
  assert.equal(v.stdout.trim(), pkg.version);
  const env = sh(unet, ['env', '--json'], app);
  assert.equal(env.code, 0, env.out);
  const e = JSON.parse(env.stdout);
  assert.equal(e.unetTs, pkg.version);
  assert.equal(e.addon.path, join(installed, 'build', 'unet_torch.node'), "the installed copy's addon is the one loaded");
  assert.equal(e.addon.built, true);
  assert.match(e.libtorch.version, /^\d+\.\d+/, env.stdout);
  assert.match(e.sharp.libvips, /^\d+\.\d+/);
  // `unet export --format web` copies onnxruntime-web's wasm from the package's dist/web/; the 143 MB
  // onnxruntime-web package itself is a dev dependency, not installed for users
  assert.ok(existsSync(join(installed, 'dist', 'web', 'ort-wasm-simd-threaded.wasm')));
  assert.ok(!existsSync(join(app, 'node_modules', 'onnxruntime-web')), 'onnxruntime-web is not installed');
  // the dashboard serves its built page from the installed copy, also from its thread (train --dashboard)
  const served = sh(
    process.execPath,
    [
      '--input-type=module',
      '-e',
      `
    const { startDashboard, startDashboardThread } = await import(${JSON.stringify(pathToFileURL(join(installed, 'dist', 'tracking', 'index.js')).href)});
    for (const d of [await startDashboard({ logdir: '.', port: 0 }), await startDashboardThread({ logdir: '.', port: 0 }, console.error)]) {
      const res = await fetch(d.url + 'assets/app.js');
      console.log(res.status, (await res.text()).length);
      await d.close();
    }`,
    ],
    app,
  );
  assert.equal(served.code, 0, served.out);
  assert.match(served.stdout, /^200 \d{4,}\n200 \d{4,}$/m, served.out);

  // 4. Without the addon: --version still works, env and commands say how to build it.
  rmSync(join(installed, 'build', 'unet_torch.node'));
  assert.equal(sh(unet, ['--version'], app).code, 0);
  const missing = sh(unet, ['env'], app);
  assert.equal(missing.code, 0, missing.out);
  assert.match(missing.stdout, /^addon {2,}not built: .*native\/build\.mjs/m);
  const train = sh(unet, ['train'], app);
  assert.equal(train.code, 1, train.out);
  assert.match(train.out, /^error: the libtorch addon is not built .*native\/build\.mjs/m);
  assert.doesNotMatch(train.out, /\n\s+at /, 'no stack trace');
});

test('the install step without a C++ compiler: advice and exit 0 (npm install goes on); a plain build fails', () => {
  const env = { CXX: join(dir, 'no-such-g++') };
  const inst = sh(process.execPath, [join(ROOT, 'native', 'build.mjs'), '--install'], ROOT, env);
  assert.equal(inst.code, 0, inst.out);
  assert.match(inst.out, /no-such-g\+\+ \(a C\+\+ compiler\) was not found, so the native addon was not built: apt-get install g\+\+ .*npm rebuild unet-ts/);
  const plain = sh(process.execPath, [join(ROOT, 'native', 'build.mjs')], ROOT, env);
  assert.equal(plain.code, 1, plain.out);
  assert.ok(existsSync(join(ROOT, 'build', 'unet_torch.node')), 'the built addon is left alone');
});
