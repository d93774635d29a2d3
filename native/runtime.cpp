// unet-ts native addon: a thin Node-API layer over libtorch (ATen). Tensors, ops, autograd,
// autocast and AMP primitives only; every piece of training logic lives in TypeScript
// (src/engine/native.ts is the only importer). One source compiles against libtorch 1.13 and 2.x.
// This file: the runtime settings (threads, seeds, devices, backend flags, memory, versions) and
// the module's registration (Init), which gathers the exports of every file.
#include "addon.h"
#include "allocator.h"

#include <ATen/Parallel.h>
#include <ATen/CPUGeneratorImpl.h>
#include <ATen/detail/CUDAHooksInterface.h>
#include <torch/version.h>

#include <mutex>
#include <string>

namespace {

using namespace unet;

Napi::Value setNumThreads(const Napi::CallbackInfo& info) {
  int64_t n = Int(ARG(0), "threads");
  // OpenMP aborts the process when it cannot create the threads asked for.
  if (n < 1 || n > 1024) throw Napi::RangeError::New(ENV, "threads must be between 1 and 1024, got " + std::to_string(n));
  at::set_num_threads(static_cast<int>(n));
  return ENV.Undefined();
}
Napi::Value getNumThreads(const Napi::CallbackInfo& info) { return Napi::Number::New(ENV, at::get_num_threads()); }
Napi::Value manualSeed(const Napi::CallbackInfo& info) {
  uint64_t seed = static_cast<uint64_t>(Int(ARG(0), "seed"));
  {
    auto gen = at::detail::getDefaultCPUGenerator();
    std::lock_guard<std::mutex> lock(gen.mutex());
    gen.set_current_seed(seed);
  }
  auto& hooks = at::detail::getCUDAHooks();
  if (hooks.hasCUDA()) {
    for (int i = 0; i < hooks.getNumGPUs(); i++) {
      auto gen = at::globalContext().defaultGenerator(at::Device(at::kCUDA, i));
      std::lock_guard<std::mutex> lock(gen.mutex());
      gen.set_current_seed(seed);
    }
  }
  return ENV.Undefined();
}
Napi::Value getRngState(const Napi::CallbackInfo& info) {
  auto gen = at::detail::getDefaultCPUGenerator();
  std::lock_guard<std::mutex> lock(gen.mutex());
  RET(gen.get_state());
}
Napi::Value setRngState(const Napi::CallbackInfo& info) {
  auto gen = at::detail::getDefaultCPUGenerator();
  std::lock_guard<std::mutex> lock(gen.mutex());
  gen.set_state(T(ARG(0)));
  return ENV.Undefined();
}
Napi::Value cudaIsAvailable(const Napi::CallbackInfo& info) { return Napi::Boolean::New(ENV, at::detail::getCUDAHooks().hasCUDA()); }
Napi::Value cudaDeviceCount(const Napi::CallbackInfo& info) {
  auto& h = at::detail::getCUDAHooks();
  return Napi::Number::New(ENV, h.hasCUDA() ? h.getNumGPUs() : 0);
}
Napi::Value setFlags(const Napi::CallbackInfo& info) {
  Napi::Object o = ARG(0).As<Napi::Object>();
  auto& ctx = at::globalContext();
  if (o.Has("cudnnBenchmark")) ctx.setBenchmarkCuDNN(Bool(o.Get("cudnnBenchmark")));
  if (o.Has("cudnnDeterministic")) ctx.setDeterministicCuDNN(Bool(o.Get("cudnnDeterministic")));
  if (o.Has("allowTF32")) {
    ctx.setAllowTF32CuBLAS(Bool(o.Get("allowTF32")));
    ctx.setAllowTF32CuDNN(Bool(o.Get("allowTF32")));
  }
  if (o.Has("mkldnn")) ctx.setUserEnabledMkldnn(Bool(o.Get("mkldnn")));
  return ENV.Undefined();
}
Napi::Value stats(const Napi::CallbackInfo& info) {
  Napi::Object o = Napi::Object::New(ENV);
  LiveCounts live = Live();
  o.Set("liveTensors", Napi::Number::New(ENV, static_cast<double>(live.tensors)));
  o.Set("liveBytes", Napi::Number::New(ENV, static_cast<double>(live.bytes)));
  o.Set("cachedBytes", Napi::Number::New(ENV, static_cast<double>(CpuCachedBytes())));
  return o;
}
Napi::Value mallocTrim(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(ENV, TrimCpuMemory());
}
Napi::Value buildInfo(const Napi::CallbackInfo& info) {
  Napi::Object o = Napi::Object::New(ENV);
  o.Set("torch", Napi::String::New(ENV, TORCH_VERSION));
  o.Set("cuda", Napi::Boolean::New(ENV, at::detail::getCUDAHooks().hasCUDA()));
  o.Set("mkldnn", Napi::Boolean::New(ENV, at::hasMKLDNN()));
  o.Set("config", Napi::String::New(ENV, at::show_config()));
  o.Set("parallel", Napi::String::New(ENV, at::get_parallel_info()));
  return o;
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  InstallCpuAllocator();
  RegisterTensor(env, exports);
  RegisterOps(env, exports);
  RegisterAutograd(env, exports);
  RegisterActivations(env, exports);
  EXPORT(setNumThreads); EXPORT(getNumThreads); EXPORT(manualSeed); EXPORT(getRngState); EXPORT(setRngState);
  EXPORT(cudaIsAvailable); EXPORT(cudaDeviceCount); EXPORT(setFlags); EXPORT(stats); EXPORT(mallocTrim); EXPORT(buildInfo);
  EXPORT(distInit); EXPORT(distInfo); EXPORT(distBroadcast); EXPORT(distAllreduce); EXPORT(distBarrier); EXPORT(distReducer);
  EXPORT(distBackward); EXPORT(distBatchNorm); EXPORT(distDestroy);
  EXPORT(resample8);
  return exports;
}

}  // namespace

NODE_API_MODULE(unet_torch, Init)
