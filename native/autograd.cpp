// Autograd (requires_grad, backward, .grad), the grad and inference modes, autocast and the AMP
// primitives of the GradScaler. The modes are thread-local state of libtorch that JS scopes enter
// and leave in LIFO order.
#include "addon.h"

#include <ATen/autocast_mode.h>
#include <c10/core/GradMode.h>
#include <c10/core/InferenceMode.h>
#include <torch/version.h>

#include <memory>
#include <vector>

#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
#define UNET_AUTOCAST_V2 1
#endif

namespace {

using namespace unet;

// --------------------------------- autograd ---------------------------------------------------
Napi::Value setRequiresGrad(const Napi::CallbackInfo& info) { T(ARG(0)).set_requires_grad(Bool(ARG(1))); return ARG(0); }
Napi::Value backward(const Napi::CallbackInfo& info) {
  at::Tensor& t = T(ARG(0));
  c10::optional<at::Tensor> g = OptT(ARG(1));
  t.backward(g.has_value() ? *g : at::Tensor(), Bool(ARG(2)));
  return ENV.Undefined();
}
Napi::Value grad(const Napi::CallbackInfo& info) {
  const at::Tensor& g = T(ARG(0)).grad();
  if (!g.defined()) return ENV.Null();
  RET(g);
}
Napi::Value setGrad(const Napi::CallbackInfo& info) {
  at::Tensor& t = T(ARG(0));
  c10::optional<at::Tensor> g = OptT(ARG(1));
  // As Python's `.grad = g`: a gradient has its tensor's shape and device (later ops assume it).
  // (Another dtype is allowed: the GradScaler tests give fp32 tensors fp16 gradients.)
  if (g.has_value() && (g->sizes() != t.sizes() || g->device() != t.device()))
    throw Napi::RangeError::New(ENV, "assigned grad has a different shape or device than its tensor");
  t.mutable_grad() = g.has_value() ? *g : at::Tensor();
  return ENV.Undefined();
}
// Drops the gradients of a parameter list (zero_grad(set_to_none=True)).
Napi::Value clearGrads(const Napi::CallbackInfo& info) {
  for (auto& t : Tensors(ARG(0))) t.mutable_grad() = at::Tensor();
  return ENV.Undefined();
}
Napi::Value grads(const Napi::CallbackInfo& info) {
  auto xs = Tensors(ARG(0));
  Napi::Array a = Napi::Array::New(ENV, xs.size());
  for (size_t i = 0; i < xs.size(); i++) {
    const at::Tensor& g = xs[i].grad();
    a.Set(static_cast<uint32_t>(i), g.defined() ? Wrap(ENV, g) : ENV.Null());
  }
  return a;
}
Napi::Value setGradEnabled(const Napi::CallbackInfo& info) {
  bool prev = c10::GradMode::is_enabled();
  c10::GradMode::set_enabled(Bool(ARG(0)));
  return Napi::Boolean::New(ENV, prev);
}
Napi::Value isGradEnabled(const Napi::CallbackInfo& info) { return Napi::Boolean::New(ENV, c10::GradMode::is_enabled()); }

// Inference mode is an RAII guard in C++; JS scopes enter/exit it in strict LIFO order.
std::vector<std::unique_ptr<c10::InferenceMode>> g_inference;
Napi::Value inferenceEnter(const Napi::CallbackInfo& info) {
  g_inference.push_back(std::make_unique<c10::InferenceMode>(true));
  return Napi::Number::New(ENV, static_cast<double>(g_inference.size()));
}
Napi::Value inferenceExit(const Napi::CallbackInfo& info) {
  if (!g_inference.empty()) g_inference.pop_back();
  return ENV.Undefined();
}

// --------------------------------- autocast & GradScaler --------------------------------------
bool AutocastEnabled(bool cuda) {
#ifdef UNET_AUTOCAST_V2
  return at::autocast::is_autocast_enabled(cuda ? at::kCUDA : at::kCPU);
#else
  return cuda ? at::autocast::is_enabled() : at::autocast::is_cpu_enabled();
#endif
}
at::ScalarType AutocastDtype(bool cuda) {
#ifdef UNET_AUTOCAST_V2
  return at::autocast::get_autocast_dtype(cuda ? at::kCUDA : at::kCPU);
#else
  return cuda ? at::autocast::get_autocast_gpu_dtype() : at::autocast::get_autocast_cpu_dtype();
#endif
}
void SetAutocast(bool cuda, bool enabled, at::ScalarType dt) {
#ifdef UNET_AUTOCAST_V2
  at::autocast::set_autocast_enabled(cuda ? at::kCUDA : at::kCPU, enabled);
  at::autocast::set_autocast_dtype(cuda ? at::kCUDA : at::kCPU, dt);
#else
  if (cuda) {
    at::autocast::set_enabled(enabled);
    at::autocast::set_autocast_gpu_dtype(dt);
  } else {
    at::autocast::set_cpu_enabled(enabled);
    at::autocast::set_autocast_cpu_dtype(dt);
  }
#endif
}
struct AutocastState { bool cuda; bool enabled; at::ScalarType dtype; };
std::vector<AutocastState> g_autocast;
// autocastEnter(deviceType, dtype, enabled): like `with torch.autocast(...)`.
Napi::Value autocastEnter(const Napi::CallbackInfo& info) {
  bool cuda = Str(ARG(0), "device type") == "cuda";
  at::ScalarType dt = DType(ARG(1));
  bool enabled = ARG(2).IsUndefined() ? true : Bool(ARG(2));
  AutocastState prev{cuda, AutocastEnabled(cuda), AutocastDtype(cuda)};
  try {
    SetAutocast(cuda, enabled, dt);
  } catch (...) {
    SetAutocast(cuda, prev.enabled, prev.dtype);  // a dtype libtorch refuses leaves no half-entered state
    throw;
  }
  g_autocast.push_back(prev);
  at::autocast::increment_nesting();
  return ENV.Undefined();
}
Napi::Value autocastExit(const Napi::CallbackInfo& info) {
  if (g_autocast.empty()) return ENV.Undefined();
  AutocastState s = g_autocast.back();
  g_autocast.pop_back();
  if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
  SetAutocast(s.cuda, s.enabled, s.dtype);
  return ENV.Undefined();
}
Napi::Value isAutocastEnabled(const Napi::CallbackInfo& info) { return Napi::Boolean::New(ENV, AutocastEnabled(Str(ARG(0), "device type") == "cuda")); }
// On libtorch 1.13 these two exist for CUDA only; the TS GradScaler falls back to plain ops on CPU.
Napi::Value ampUnscale_(const Napi::CallbackInfo& info) {
  auto gs = Tensors(ARG(0));
  at::_amp_foreach_non_finite_check_and_unscale_(gs, T(ARG(1)), T(ARG(2)));
  return ENV.Undefined();
}
Napi::Value ampUpdateScale_(const Napi::CallbackInfo& info) {
  at::_amp_update_scale_(T(ARG(0)), T(ARG(1)), T(ARG(2)), Num(ARG(3), "growth"), Num(ARG(4), "backoff"), Int(ARG(5), "interval"));
  return ENV.Undefined();
}

void Register(Napi::Env env, Napi::Object exports) {
  EXPORT(setRequiresGrad); EXPORT(backward); EXPORT(grad); EXPORT(setGrad); EXPORT(clearGrads); EXPORT(grads);
  EXPORT(setGradEnabled); EXPORT(isGradEnabled); EXPORT(inferenceEnter); EXPORT(inferenceExit);
  EXPORT(autocastEnter); EXPORT(autocastExit); EXPORT(isAutocastEnabled); EXPORT(ampUnscale_); EXPORT(ampUpdateScale_);
}

}  // namespace

void unet::RegisterAutograd(Napi::Env env, Napi::Object exports) { Register(env, exports); }
