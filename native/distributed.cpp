// Data-parallel training on libtorch's own distributed layer (c10d), as PyTorch's
// DistributedDataParallel does it: TCPStore rendezvous (rank 0 serves), a Gloo (CPU) or NCCL (CUDA)
// process group, parameters broadcast from rank 0, and gradients averaged by c10d::Reducer
// (bucketed allreduces launched by autograd hooks during backward). Calls that communicate run on a
// libuv worker and resolve a Promise, so Node's thread never waits on the network; every wait is
// bounded by the group's timeout. The one exception is sync-BN's forward (see distBatchNorm).
#include "addon.h"

#include <torch/version.h>
#include <torch/csrc/autograd/autograd.h>
#include <torch/csrc/autograd/custom_function.h>
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroup.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#include <torch/csrc/distributed/c10d/comm.hpp>
#include <torch/csrc/distributed/c10d/reducer.hpp>
#ifdef USE_C10D_GLOO
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#endif
#ifdef USE_C10D_NCCL
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif

#include <algorithm>
#include <chrono>
#include <functional>
#include <memory>
#include <type_traits>

namespace {

using ms = std::chrono::milliseconds;

// One process group per process, like torch.distributed's default group.
struct Group {
  c10::intrusive_ptr<c10d::Store> store;
  c10::intrusive_ptr<c10d::ProcessGroup> pg;
  std::shared_ptr<c10d::Reducer> reducer;
  int rank = 0;
  int size = 1;
  ms timeout{1800 * 1000};
  std::string backend;
};
Group g;

void NeedGroup(Napi::Env env) {
  if (!g.pg) throw Napi::Error::New(env, "distributed: no process group (call distInit first)");
}

// Runs `work` on a libuv worker; the Promise resolves when it returns and rejects with its error
// (code ERR_DIST) when it throws.
class Job : public Napi::AsyncWorker {
 public:
  Job(Napi::Env env, std::function<void()> work)
      : Napi::AsyncWorker(env), work_(std::move(work)), deferred_(Napi::Promise::Deferred::New(env)) {}
  Napi::Promise Promise() { return deferred_.Promise(); }

 protected:
  void Execute() override {
    try {
      work_();
    } catch (const c10::Error& e) {
      SetError(unet::CleanMessage(e.what_without_backtrace()));
    } catch (const std::exception& e) {
      const c10::Error* ce = dynamic_cast<const c10::Error*>(&e);
      SetError(unet::CleanMessage(ce != nullptr ? ce->what_without_backtrace() : e.what()));
    } catch (...) {
      SetError("unknown native error");
    }
  }
  void OnOK() override { deferred_.Resolve(Env().Undefined()); }
  void OnError(const Napi::Error& e) override {
    Napi::Error err = Napi::Error::New(Env(), e.Message());
    err.Set("code", Napi::String::New(Env(), "ERR_DIST"));
    deferred_.Reject(err.Value());
  }

 private:
  std::function<void()> work_;
  Napi::Promise::Deferred deferred_;
};

Napi::Value Start(Napi::Env env, std::function<void()> work) {
  Job* job = new Job(env, std::move(work));  // owned and deleted by libuv's queue
  Napi::Promise p = job->Promise();
  job->Queue();
  return p;
}

void Wait(const c10::intrusive_ptr<c10d::Work>& w) { w->wait(g.timeout); }

bool IsLoopback(const std::string& host) { return host == "localhost" || host.rfind("127.", 0) == 0 || host == "::1"; }

// The process group for `backend`. From torch 2.0 the backends derive from c10d::Backend and are
// wrapped in a ProcessGroup (which the Reducer and broadcast_coalesced take); 1.x backends are
// ProcessGroups themselves.
c10::intrusive_ptr<c10d::ProcessGroup> MakeGroup(const std::string& backend, const c10::intrusive_ptr<c10d::Store>& store, int rank,
                                                 int size, ms timeout, const std::string& host) {
#if TORCH_VERSION_MAJOR >= 2
  using Impl = c10d::Backend;
#else
  using Impl = c10d::ProcessGroup;
#endif
  c10::intrusive_ptr<Impl> impl;
  if (backend == "gloo") {
#ifdef USE_C10D_GLOO
    auto opts = c10d::ProcessGroupGloo::Options::create(timeout);
    // Gloo binds to one interface: GLOO_SOCKET_IFNAME when set, loopback for a local run, else the
    // interface of this host's name (what torch.distributed does).
    const char* ifname = getenv("GLOO_SOCKET_IFNAME");
    if (ifname != nullptr && *ifname != '\0')
      opts->devices.push_back(c10d::ProcessGroupGloo::createDeviceForInterface(ifname));
    else if (IsLoopback(host))
      opts->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1"));
    else
      opts->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
    impl = c10::make_intrusive<c10d::ProcessGroupGloo>(store, rank, size, opts);
#else
    throw std::runtime_error("this libtorch was built without Gloo (no CPU distributed backend); use --backend nccl on CUDA");
#endif
  } else if (backend == "nccl") {
#ifdef USE_C10D_NCCL
    auto opts = c10d::ProcessGroupNCCL::Options::create();
    opts->timeout = timeout;
    impl = c10::make_intrusive<c10d::ProcessGroupNCCL>(store, rank, size, opts);
#else
    throw std::runtime_error("this libtorch was built without NCCL; use --backend gloo");
#endif
  } else {
    throw std::runtime_error("unknown backend '" + backend + "' (gloo or nccl)");
  }
#if TORCH_VERSION_MAJOR >= 2
  auto type = backend == "nccl" ? c10d::ProcessGroup::BackendType::NCCL : c10d::ProcessGroup::BackendType::GLOO;
#if TORCH_VERSION_MAJOR > 2 || TORCH_VERSION_MINOR >= 5
  auto pg = c10::make_intrusive<c10d::ProcessGroup>(store, rank, size);
  pg->setDefaultBackend(type);
#else
  auto pg = c10::make_intrusive<c10d::ProcessGroup>(store, rank, size, c10::make_intrusive<c10d::ProcessGroup::Options>(backend, timeout));
#endif
  pg->setBackend(backend == "nccl" ? c10::DeviceType::CUDA : c10::DeviceType::CPU, type, impl);
  return pg;
#else
  return impl;
#endif
}

int Field(const Napi::Object& o, const char* key) {
  Napi::Value v = o.Get(key);
  if (!v.IsNumber()) throw Napi::TypeError::New(o.Env(), std::string("distInit: ") + key + " must be a number");
  return v.As<Napi::Number>().Int32Value();
}

}  // namespace

// distInit({rank, worldSize, masterAddr, masterPort, timeoutMs, backend}) -> Promise: rendezvous
// through a TCPStore (rank 0 listens on masterPort) and the process group. Rejects on timeout.
Napi::Value distInit(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (g.pg) throw Napi::Error::New(env, "distributed: already initialised");
  Napi::Object o = info[0].As<Napi::Object>();
  int rank = Field(o, "rank"), size = Field(o, "worldSize"), port = Field(o, "masterPort");
  ms timeout(static_cast<int64_t>(o.Get("timeoutMs").As<Napi::Number>().DoubleValue()));
  std::string host = o.Get("masterAddr").As<Napi::String>().Utf8Value();
  std::string backend = o.Get("backend").As<Napi::String>().Utf8Value();
  return Start(env, [=]() {
    c10d::TCPStoreOptions so;
    so.port = static_cast<std::uint16_t>(port);
    so.isServer = rank == 0;
    so.numWorkers = size;
    so.waitWorkers = true;
    so.timeout = timeout;
    auto tcp = c10::make_intrusive<c10d::TCPStore>(host, so);
    auto store = c10::make_intrusive<c10d::PrefixStore>("unet/0", tcp);
    auto pg = MakeGroup(backend, store, rank, size, timeout, host);
    g.store = tcp;
    g.pg = pg;
    g.rank = rank;
    g.size = size;
    g.timeout = timeout;
    g.backend = backend;
  });
}

Napi::Value distInfo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = Napi::Object::New(env);
  o.Set("initialized", Napi::Boolean::New(env, static_cast<bool>(g.pg)));
  o.Set("rank", Napi::Number::New(env, g.rank));
  o.Set("worldSize", Napi::Number::New(env, g.size));
  o.Set("backend", Napi::String::New(env, g.backend));
#ifdef USE_C10D_GLOO
  o.Set("gloo", Napi::Boolean::New(env, true));
#else
  o.Set("gloo", Napi::Boolean::New(env, false));
#endif
#ifdef USE_C10D_NCCL
  o.Set("nccl", Napi::Boolean::New(env, true));
#else
  o.Set("nccl", Napi::Boolean::New(env, false));
#endif
  return o;
}

// distBroadcast(tensors, root) -> Promise: copies root's values into every rank's tensors, in
// buckets (parameters and buffers at start, as DDP).
Napi::Value distBroadcast(const Napi::CallbackInfo& info) {
  NeedGroup(info.Env());
  std::vector<at::Tensor> ts = unet::Tensors(info[0]);
  int root = info[1].IsNumber() ? info[1].As<Napi::Number>().Int32Value() : 0;
  return Start(info.Env(), [ts, root]() {
    at::NoGradGuard no_grad;  // the tensors are leaves that require grad
    c10d::broadcast_coalesced(g.pg, ts, size_t(64) << 20, root);
  });
}

// distAllreduce(tensors, op = 'sum'|'max'|'min') -> Promise: reduces each tensor in place.
Napi::Value distAllreduce(const Napi::CallbackInfo& info) {
  NeedGroup(info.Env());
  std::vector<at::Tensor> ts = unet::Tensors(info[0]);
  std::string op = info[1].IsString() ? info[1].As<Napi::String>().Utf8Value() : "sum";
  c10d::AllreduceOptions opts;
  if (op == "sum") opts.reduceOp = c10d::ReduceOp::SUM;
  else if (op == "max") opts.reduceOp = c10d::ReduceOp::MAX;
  else if (op == "min") opts.reduceOp = c10d::ReduceOp::MIN;
  else throw Napi::TypeError::New(info.Env(), "distAllreduce: op must be sum, max or min");
  return Start(info.Env(), [ts, opts]() {
    std::vector<c10::intrusive_ptr<c10d::Work>> works;
    for (const at::Tensor& t : ts) {
      std::vector<at::Tensor> one{t};
      works.push_back(g.pg->allreduce(one, opts));
    }
    for (auto& w : works) Wait(w);
  });
}

Napi::Value distBarrier(const Napi::CallbackInfo& info) {
  NeedGroup(info.Env());
  return Start(info.Env(), []() { Wait(g.pg->barrier()); });
}

namespace {

// c10d::Reducer's constructor as this libtorch declares it: up to torch 2.7 it takes per-bucket size
// limits (unused since 1.12); torch 2.8 dropped them and added two flags without defaults. Chosen
// at compile time, so one source builds against both.
template <typename R = c10d::Reducer>
std::shared_ptr<R> MakeReducer(const std::vector<at::Tensor>& params, const std::vector<std::vector<size_t>>& buckets, const std::vector<size_t>& limits,
                               const std::vector<bool>& sparse, int64_t cap) {
  using Tensors = std::vector<at::Tensor>;
  using Buckets = std::vector<std::vector<size_t>>;
  using Pg = c10::intrusive_ptr<c10d::ProcessGroup>;
  using Names = std::unordered_map<size_t, std::string>;
  const auto first = static_cast<int64_t>(c10d::kDefaultFirstBucketBytes);
  const bool findUnused = false, gradAsBucketView = false;
  if constexpr (std::is_constructible_v<R, Tensors, Buckets, std::vector<size_t>, Pg, std::vector<bool>, int64_t, bool, bool, Names, int64_t>) {
    return std::make_shared<R>(params, buckets, limits, g.pg, sparse, cap, findUnused, gradAsBucketView, Names(), first);
  } else if constexpr (std::is_constructible_v<R, Tensors, Buckets, Pg, std::vector<bool>, int64_t, bool, bool, Names, int64_t, bool, bool>) {
    const bool skipAllReduceUnused = false, usePythonReducer = false;
    return std::make_shared<R>(params, buckets, g.pg, sparse, cap, findUnused, gradAsBucketView, Names(), first, skipAllReduceUnused, usePythonReducer);
  } else {
    static_assert(sizeof(R) == 0, "this libtorch's c10d::Reducer constructor is not one MakeReducer knows (native/distributed.cpp)");
  }
}

}  // namespace

// distReducer(params, bucketCapMB = 25): DDP's gradient Reducer over these parameters, with the
// bucket layout DistributedDataParallel builds (reverse order, a small first bucket).
Napi::Value distReducer(const Napi::CallbackInfo& info) {
  NeedGroup(info.Env());
  std::vector<at::Tensor> params = unet::Tensors(info[0]);
  int64_t cap = info[1].IsNumber() ? static_cast<int64_t>(info[1].As<Napi::Number>().DoubleValue() * 1024 * 1024) : c10d::kDefaultBucketBytesCap;
  std::vector<bool> sparse(params.size(), false);
  std::vector<size_t> limits{static_cast<size_t>(c10d::kDefaultFirstBucketBytes), static_cast<size_t>(cap)};
  auto assignment = c10d::compute_bucket_assignment_by_size(params, limits, sparse);
  std::vector<std::vector<size_t>> buckets = std::get<0>(assignment);
  std::vector<size_t> bucket_limits = std::get<1>(assignment);
  std::reverse(buckets.begin(), buckets.end());
  std::reverse(bucket_limits.begin(), bucket_limits.end());
  g.reducer.reset();
  g.reducer = MakeReducer(params, buckets, bucket_limits, sparse, cap);
  return info.Env().Undefined();
}

// distBackward(loss, sync) -> Promise: loss.backward() on a worker. With sync, the Reducer's hooks
// allreduce the gradients bucket by bucket while backward runs and average them over the ranks;
// without (DDP's no_sync, for accumulation micro-steps) gradients only accumulate locally.
Napi::Value distBackward(const Napi::CallbackInfo& info) {
  NeedGroup(info.Env());
  if (!g.reducer) throw Napi::Error::New(info.Env(), "distributed: no reducer (call distReducer first)");
  at::Tensor loss = unet::T(info[0]);
  bool sync = info[1].ToBoolean().Value();
  return Start(info.Env(), [loss, sync]() {
    // As DistributedDataParallel.forward: buckets are rebuilt once, in the order gradients arrived.
    g.reducer->rebuild_buckets();
    if (sync) {
      g.reducer->prepare_for_forward();
      g.reducer->prepare_for_backward({loss});
    }
    torch::autograd::backward({loss});
  });
}

namespace {

void AllreduceNow(at::Tensor& t) {
  std::vector<at::Tensor> one{t};
  Wait(g.pg->allreduce(one));
}

// BatchNorm with statistics over all ranks (PyTorch's SyncBatchNorm, whose kernels 1.13 lacks on
// CPU): forward allreduces [Σx, Σx², n] per channel, backward [Σdy, Σdy·x̂]; weight and bias get
// this rank's gradients, which the Reducer then averages.
struct SyncBatchNorm : public torch::autograd::Function<SyncBatchNorm> {
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias,
                            at::Tensor runningMean, at::Tensor runningVar, double momentum, double eps) {
    const int64_t c = x.size(1);
    at::Tensor xf = x.to(at::kFloat);
    at::Tensor stats = at::cat({xf.sum({0, 2, 3}), xf.square().sum({0, 2, 3}), at::full({1}, static_cast<double>(x.numel() / c), xf.options())});
    AllreduceNow(stats);
    const double count = stats[2 * c].item<double>();
    at::Tensor mean = stats.slice(0, 0, c) / count;
    at::Tensor var = (stats.slice(0, c, 2 * c) / count - mean.square()).clamp_min(0);
    at::Tensor invstd = (var + eps).rsqrt();
    if (runningMean.defined()) runningMean.mul_(1 - momentum).add_(mean.to(runningMean.scalar_type()), momentum);
    if (runningVar.defined()) runningVar.mul_(1 - momentum).add_((var * (count / std::max(count - 1, 1.0))).to(runningVar.scalar_type()), momentum);
    at::Tensor xhat = (xf - mean.view({1, c, 1, 1})) * invstd.view({1, c, 1, 1});
    at::Tensor w = weight.to(at::kFloat);
    ctx->save_for_backward({xhat, w, invstd});
    ctx->saved_data["count"] = count;
    ctx->saved_data["wdtype"] = static_cast<int64_t>(weight.scalar_type());
    return (xhat * w.view({1, c, 1, 1}) + bias.to(at::kFloat).view({1, c, 1, 1})).to(x.scalar_type());
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx, torch::autograd::variable_list grads) {
    auto saved = ctx->get_saved_variables();
    const at::Tensor& xhat = saved[0];
    const at::Tensor& w = saved[1];
    const at::Tensor& invstd = saved[2];
    const double count = ctx->saved_data["count"].toDouble();
    const auto wdtype = static_cast<at::ScalarType>(ctx->saved_data["wdtype"].toInt());
    const int64_t c = xhat.size(1);
    at::Tensor dy = grads[0].to(at::kFloat);
    at::Tensor sumDy = dy.sum({0, 2, 3});
    at::Tensor sumDyXhat = (dy * xhat).sum({0, 2, 3});
    at::Tensor both = at::cat({sumDy, sumDyXhat});
    AllreduceNow(both);
    at::Tensor meanDy = (both.slice(0, 0, c) / count).view({1, c, 1, 1});
    at::Tensor meanDyXhat = (both.slice(0, c, 2 * c) / count).view({1, c, 1, 1});
    at::Tensor dx = (dy - meanDy - xhat * meanDyXhat) * (invstd * w).view({1, c, 1, 1});
    return {dx.to(grads[0].scalar_type()), sumDyXhat.to(wdtype), sumDy.to(wdtype), at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor()};
  }
};

}  // namespace

// distBatchNorm(x, weight, bias, runningMean, runningVar, momentum, eps): training-mode BatchNorm
// over all ranks. Its forward allreduce waits on the calling (JS) thread, bounded by the timeout:
// the model's forward is synchronous. Its backward runs inside distBackward, on the worker.
Napi::Value distBatchNorm(const Napi::CallbackInfo& info) {
  NeedGroup(info.Env());
  at::Tensor y = SyncBatchNorm::apply(unet::T(info[0]), unet::T(info[1]), unet::T(info[2]), unet::T(info[3]), unet::T(info[4]),
                                      info[5].As<Napi::Number>().DoubleValue(), info[6].As<Napi::Number>().DoubleValue());
  return unet::Wrap(info.Env(), y);
}

// distDestroy() -> Promise: drops the reducer, the process group and the store.
Napi::Value distDestroy(const Napi::CallbackInfo& info) {
  g.reducer.reset();  // unhooks from the parameters' gradient accumulators
  return Start(info.Env(), []() {
    g.pg.reset();
    g.store.reset();
    g.size = 1;
    g.rank = 0;
    g.backend.clear();
  });
}
