#!/usr/bin/env node
// Builds native/*.cpp (the list `sources` below) into build/unet_torch.node against libtorch, found in this order:
//   1. $LIBTORCH (a libtorch dir or a torch package dir; $LIBTORCH_CXX11_ABI overrides the ABI flag)
//   2. the `torch` package of `python3` (how CUDA builds happen: pip wheels carry include/ and lib/)
//   3. the system install (Debian `libtorch-dev`, CPU; its library folder is the multiarch one,
//      e.g. x86_64-linux-gnu or aarch64-linux-gnu)
// We call g++ directly: node-gyp and cmake-js download Node headers, and nothing but package
// registries can be reached here (nor anything at all on the GPU machine). The N-API headers come
// from the node-api-headers and node-addon-api npm packages. Re-running is a no-op when the
// sources, flags and libtorch are unchanged; each source compiles to its own cached object, so a
// change to one file recompiles only that file; stale files compile in parallel.
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { closeSync, copyFileSync, existsSync, mkdirSync, openSync, readFileSync, readdirSync, renameSync, writeFileSync, writeSync } from 'node:fs';
import { createRequire } from 'node:module';
import { availableParallelism } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(join(root, 'package.json'));
const nativeDir = join(root, 'native');
// The libtorch layer, by concern (addon.h is what they share): tensor.cpp (handles, argument
// conversion, errors), ops.cpp, activations.cpp (the encoders' activations), autograd.cpp (autograd, autocast, AMP), allocator.cpp (the CPU
// allocator; c10 only), runtime.cpp (runtime settings and the module's Init); distributed.cpp: c10d;
// resample.cpp: Pillow's 8-bit image resampling (no torch).
const sources = ['tensor.cpp', 'ops.cpp', 'activations.cpp', 'autograd.cpp', 'allocator.cpp', 'runtime.cpp', 'distributed.cpp', 'resample.cpp'];
const outDir = join(root, 'build');
const out = join(outDir, 'unet_torch.node');
const force = process.argv.includes('--force');
// `npm install` runs this with --install: without libtorch (or g++) it explains and exits 0, so the
// package still installs (and `unet env` says what is missing) instead of failing the whole install.
const installMode = process.argv.includes('--install');
// A folder holding an addon built from the same source, flags and libtorch (e.g. the repository's
// build/ for the packaging test): it is copied instead of compiling again.
const cacheDir = process.env.UNET_ADDON_CACHE;

// npm (7+) hides an install script's output unless --foreground-scripts, and the compile takes
// minutes: in install mode, progress goes straight to the terminal when there is one.
const tty = (() => {
  if (!installMode || process.env.npm_config_foreground_scripts === 'true') return null;
  try {
    return openSync('/dev/tty', 'w');
  } catch {
    return null; // no terminal (CI, a pipe): npm's log keeps the output
  }
})();
function say(msg) {
  if (tty === null) return console.log(msg);
  writeSync(tty, `${msg}\n`);
}

function fail(msg) {
  console.error(`native build: ${msg}`);
  process.exit(1);
}

function torchFromDir(dir, source, abiHint) {
  const inc = join(dir, 'include');
  if (!existsSync(join(inc, 'ATen', 'ATen.h'))) return null;
  return { source, include: [inc, join(inc, 'torch', 'csrc', 'api', 'include')], lib: join(dir, 'lib'), abi: abiHint };
}

function findLibtorch() {
  if (process.env.LIBTORCH) {
    const t = torchFromDir(process.env.LIBTORCH, `LIBTORCH=${process.env.LIBTORCH}`, process.env.LIBTORCH_CXX11_ABI);
    if (!t) fail(`LIBTORCH=${process.env.LIBTORCH} has no include/ATen/ATen.h; point it at a libtorch or torch package directory`);
    return t;
  }
  const py = spawnSync('python3', ['-c', 'import torch,os;print(os.path.dirname(torch.__file__));print(int(torch._C._GLIBCXX_USE_CXX11_ABI))'], {
    encoding: 'utf8',
  });
  if (py.status === 0) {
    const [dir, abi] = py.stdout.trim().split('\n');
    const t = torchFromDir(dir, `python3 torch package (${dir})`, abi);
    if (t) return t;
  }
  if (existsSync('/usr/include/ATen/ATen.h')) {
    return {
      source: 'system (Debian libtorch-dev)',
      include: ['/usr/include', '/usr/include/torch/csrc/api/include'],
      lib: systemLibDir(),
      abi: '1',
    };
  }
  return null;
}

/** Debian's multiarch library folder (/usr/lib/x86_64-linux-gnu, /usr/lib/aarch64-linux-gnu, ...). */
function systemLibDir() {
  for (const [cmd, args] of [
    ['gcc', ['-print-multiarch']],
    ['dpkg-architecture', ['-qDEB_HOST_MULTIARCH']],
  ]) {
    const r = spawnSync(cmd, args, { encoding: 'utf8' });
    const triple = r.status === 0 ? r.stdout.trim() : '';
    if (triple && existsSync(join('/usr/lib', triple, 'libtorch.so'))) return join('/usr/lib', triple);
  }
  return existsSync('/usr/lib/libtorch.so') ? '/usr/lib' : join('/usr/lib', `${process.arch === 'arm64' ? 'aarch64' : 'x86_64'}-linux-gnu`);
}

const NO_LIBTORCH = [
  'libtorch was not found, so the native addon was not built. Get one of:',
  '  Debian/Ubuntu (CPU):  apt-get install libtorch-dev libgloo-dev libopenblas0-openmp g++',
  '  pip (CPU or CUDA):    pip install torch   (found through `python3`; or set LIBTORCH=<site-packages>/torch)',
  '  a libtorch zip:       LIBTORCH=/path/to/libtorch (from pytorch.org; LIBTORCH_CXX11_ABI=0 for the pre-cxx11 ABI)',
  'then run `npm rebuild unet-ts` (in this project: `npm run build`).',
].join('\n');

function torchVersion(includes) {
  for (const inc of includes) {
    const f = join(inc, 'torch', 'version.h');
    if (existsSync(f)) {
      const text = readFileSync(f, 'utf8');
      const major = Number(/TORCH_VERSION_MAJOR (\d+)/.exec(text)?.[1] ?? 1);
      const minor = Number(/TORCH_VERSION_MINOR (\d+)/.exec(text)?.[1] ?? 13);
      return { major, minor };
    }
  }
  return { major: 1, minor: 13 };
}

const torch = findLibtorch();
if (!torch) {
  if (installMode) {
    console.warn(`unet-ts: ${NO_LIBTORCH}`);
    process.exit(0);
  }
  fail(NO_LIBTORCH);
}
const cxx = process.env.CXX ?? 'g++';
if (spawnSync(cxx, ['--version']).status !== 0) {
  const msg = `${cxx} (a C++ compiler) was not found, so the native addon was not built: apt-get install g++ (or set CXX), then run \`npm rebuild unet-ts\` (in this project: \`npm run build\`).`;
  if (installMode) {
    console.warn(`unet-ts: ${msg}`);
    process.exit(0);
  }
  fail(msg);
}
const ver = torchVersion(torch.include);
const std = ver.major > 2 || (ver.major === 2 && ver.minor >= 8) ? 'c++20' : 'c++17';
const napiInclude = require('node-api-headers').include_dir;
const addonInclude = dirname(require.resolve('node-addon-api/package.json'));
const hasCuda = existsSync(join(torch.lib, 'libtorch_cuda.so'));
const libs = ['-ltorch', '-ltorch_cpu', '-lc10'];
if (hasCuda) libs.push('-ltorch_cuda', '-lc10_cuda');
const abi = torch.abi ?? '1';
// c10d: ProcessGroupGloo.hpp is guarded by USE_C10D_GLOO and needs gloo's headers (Debian:
// libgloo-dev); reducer.hpp includes a header Debian does not ship, stood in for by native/shim.
const c10d = join(torch.include[0], 'torch', 'csrc', 'distributed', 'c10d');
const hasGloo = existsSync(join(c10d, 'ProcessGroupGloo.hpp')) && [torch.include[0], '/usr/include'].some((i) => existsSync(join(i, 'gloo', 'config.h')));
const ncclInclude = join(torch.include[0], '..', '..', 'nvidia', 'nccl', 'include'); // pip's nvidia-nccl package
const hasNccl = hasCuda && existsSync(join(c10d, 'ProcessGroupNCCL.hpp')) && existsSync(join(ncclInclude, 'nccl.h'));
// Our warnings are shown; headers of libtorch and Node-API are -isystem, so theirs are not.
const options = [
  `-std=${std}`,
  '-O2',
  '-fPIC',
  '-fvisibility=hidden',
  '-Wall',
  '-Wextra',
  `-D_GLIBCXX_USE_CXX11_ABI=${abi}`,
  '-DNAPI_CPP_EXCEPTIONS',
  '-DNODE_ADDON_API_DISABLE_DEPRECATED',
  ...(hasGloo ? ['-DUSE_C10D_GLOO'] : []),
  ...(hasNccl ? ['-DUSE_C10D_NCCL'] : []),
];
// (/usr/include is a system folder already; naming it again breaks libstdc++'s #include_next.)
const includes = [napiInclude, addonInclude, ...torch.include, ...(hasNccl ? [ncclInclude] : [])].filter((i) => i !== '/usr/include').flatMap((i) => ['-isystem', i]);
includes.push('-idirafter', join(nativeDir, 'shim')); // after the real headers: a libtorch that has them wins
const link = ['-shared', `-L${torch.lib}`, `-Wl,-rpath,${torch.lib}`, '-Wl,--no-as-needed', ...libs, '-Wl,--as-needed'];

// What the binary depends on, without where this checkout is: the same stamp in the repository
// and in an installed copy of the package means the same addon.
const headerVersions = ['node-api-headers', 'node-addon-api'].map((p) => require(`${p}/package.json`).version);
const hash = (...parts) => {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return h.digest('hex');
};
// An object is stale when its source, a local header (native/*.h) or the flags changed.
const headers = readdirSync(nativeDir)
  .filter((f) => f.endsWith('.h'))
  .sort()
  .map((f) => readFileSync(join(nativeDir, f)));
const compileKey = JSON.stringify({ options, torch: torch.include, headerVersions, cxx, node: process.version });
const objects = sources.map((f) => ({ src: join(nativeDir, f), obj: join(outDir, 'obj', f.replace(/\.cpp$/, '.o')) }));
for (const o of objects) o.stamp = hash(readFileSync(o.src), ...headers, compileKey);
const stamp = hash(...objects.map((o) => o.stamp), JSON.stringify({ lib: torch.lib, link }));
const stampFile = join(outDir, 'unet_torch.stamp');
const stampOf = (dir) => (existsSync(join(dir, 'unet_torch.node')) && existsSync(join(dir, 'unet_torch.stamp')) ? readFileSync(join(dir, 'unet_torch.stamp'), 'utf8') : null);
if (!force && stampOf(outDir) === stamp) process.exit(0);
mkdirSync(outDir, { recursive: true });
const info = JSON.stringify({ ...torch, version: `${ver.major}.${ver.minor}`, cuda: hasCuda, gloo: hasGloo, nccl: hasNccl }, null, 2);
if (!force && cacheDir && stampOf(cacheDir) === stamp) {
  copyFileSync(join(cacheDir, 'unet_torch.node'), `${out}.tmp`);
  renameSync(`${out}.tmp`, out);
  writeFileSync(stampFile, stamp);
  writeFileSync(join(outDir, 'libtorch.json'), info);
  say(`native build: same source, flags and libtorch as ${cacheDir}; copied its addon to ${out}`);
  process.exit(0);
}
mkdirSync(join(outDir, 'obj'), { recursive: true });
// Stale objects compile side by side, up to one per core (at most 4: each g++ of a libtorch file
// takes ~0.8 GB); most of each one's time is parsing ATen's headers.
const stale = objects.filter((o) => force || !existsSync(o.obj) || !existsSync(`${o.obj}.stamp`) || readFileSync(`${o.obj}.stamp`, 'utf8') !== o.stamp);
const total = stale.length;
const t0 = Date.now();
say(
  `native build: compiling unet-ts's addon (its binding to libtorch, the C++ engine of PyTorch) against libtorch ${ver.major}.${ver.minor} from ${torch.source}` +
    `${hasCuda ? ' (CUDA)' : ''}, ABI ${abi}${hasGloo ? ', Gloo' : ''}${hasNccl ? ', NCCL' : ''}: ${total} file(s), a few minutes on 2 cores, once per install or source change`,
);
let done = 0;
async function compile(o) {
  say(`native build: compiling ${o.src}...`);
  const code = await new Promise((done) => {
    spawn(cxx, [...options, ...includes, '-c', o.src, '-o', `${o.obj}.tmp`], { stdio: 'inherit' })
      .on('error', () => done(-1))
      .on('close', done);
  });
  if (code !== 0) fail(`${cxx} failed (see above).`);
  renameSync(`${o.obj}.tmp`, o.obj);
  writeFileSync(`${o.obj}.stamp`, o.stamp);
  done++;
  say(`native build: ${done} of ${total} compiled (${Math.round((Date.now() - t0) / 1000)} s)`);
}
const jobs = Math.max(1, Math.min(4, availableParallelism()));
await Promise.all(
  Array.from({ length: jobs }, async () => {
    while (stale.length > 0) await compile(stale.shift());
  }),
);
try {
  execFileSync(cxx, [...objects.map((o) => o.obj), '-o', `${out}.tmp`, ...link], { stdio: 'inherit' });
} catch {
  fail('linking the addon failed (see above)');
}
renameSync(`${out}.tmp`, out);
writeFileSync(stampFile, stamp);
writeFileSync(join(outDir, 'libtorch.json'), info);
say(`native build: wrote ${out}`);
if (tty !== null) closeSync(tty);
