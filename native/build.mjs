#!/usr/bin/env node
// Builds native/torch_addon.cpp into build/unet_torch.node against libtorch, found in this order:
//   1. $LIBTORCH (a libtorch dir or a torch package dir; $LIBTORCH_CXX11_ABI overrides the ABI flag)
//   2. the `torch` package of `python3` (how CUDA builds happen: pip wheels carry include/ and lib/)
//   3. the system install (Debian `libtorch-dev`, CPU)
// We call g++ directly: node-gyp and cmake-js download Node headers, and nothing but package
// registries can be reached here (nor anything at all on the GPU machine). The N-API headers come
// from the node-api-headers and node-addon-api npm packages. Re-running is a no-op when the
// sources, flags and libtorch are unchanged.
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync, renameSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(join(root, 'package.json'));
const src = join(root, 'native', 'torch_addon.cpp');
const outDir = join(root, 'build');
const out = join(outDir, 'unet_torch.node');
const force = process.argv.includes('--force');

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
      lib: '/usr/lib/x86_64-linux-gnu',
      abi: '1',
    };
  }
  fail('libtorch not found. Install it with `apt-get install libtorch-dev` (CPU), set LIBTORCH, or install the torch Python package');
}

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
const ver = torchVersion(torch.include);
const std = ver.major > 2 || (ver.major === 2 && ver.minor >= 8) ? 'c++20' : 'c++17';
const napiInclude = require('node-api-headers').include_dir;
const addonInclude = dirname(require.resolve('node-addon-api/package.json'));
const hasCuda = existsSync(join(torch.lib, 'libtorch_cuda.so'));
const libs = ['-ltorch', '-ltorch_cpu', '-lc10'];
if (hasCuda) libs.push('-ltorch_cuda', '-lc10_cuda');
const abi = torch.abi ?? '1';
const flags = [
  `-std=${std}`, '-O2', '-fPIC', '-shared', '-fvisibility=hidden', '-w',
  `-D_GLIBCXX_USE_CXX11_ABI=${abi}`, '-DNAPI_CPP_EXCEPTIONS', '-DNODE_ADDON_API_DISABLE_DEPRECATED',
  `-I${napiInclude}`, `-I${addonInclude}`, ...torch.include.map((i) => `-I${i}`),
  src, '-o', `${out}.tmp`,
  `-L${torch.lib}`, `-Wl,-rpath,${torch.lib}`, '-Wl,--no-as-needed', ...libs, '-Wl,--as-needed',
];

const stamp = createHash('sha256').update(readFileSync(src)).update(JSON.stringify(flags)).update(process.version).digest('hex');
const stampFile = join(outDir, 'unet_torch.stamp');
if (!force && existsSync(out) && existsSync(stampFile) && readFileSync(stampFile, 'utf8') === stamp) {
  process.exit(0);
}
mkdirSync(outDir, { recursive: true });
console.log(`native build: libtorch ${ver.major}.${ver.minor} from ${torch.source}${hasCuda ? ' (CUDA)' : ''}, ABI ${abi}; compiling (about a minute)...`);
try {
  execFileSync(process.env.CXX ?? 'g++', flags, { stdio: 'inherit' });
} catch {
  fail('g++ failed (see above). Is build-essential installed?');
}
renameSync(`${out}.tmp`, out);
writeFileSync(stampFile, stamp);
writeFileSync(join(outDir, 'libtorch.json'), JSON.stringify({ ...torch, version: `${ver.major}.${ver.minor}`, cuda: hasCuda }, null, 2));
console.log(`native build: wrote ${out}`);
