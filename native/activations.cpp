// The activations and the normalisation the pretrained encoders use beyond the reference UNet's
// (EfficientNet: SiLU; MobileNetV3: hard swish / hard sigmoid; ConvNeXt: exact GELU, layer norm).
#include "addon.h"

namespace {

using namespace unet;

Napi::Value silu(const Napi::CallbackInfo& info) { RET(at::silu(T(ARG(0)))); }
Napi::Value gelu(const Napi::CallbackInfo& info) { RET(at::gelu(T(ARG(0)))); }
Napi::Value hardswish(const Napi::CallbackInfo& info) { RET(at::hardswish(T(ARG(0)))); }
Napi::Value hardsigmoid(const Napi::CallbackInfo& info) { RET(at::hardsigmoid(T(ARG(0)))); }
// over the last dims of x given by normalizedShape, as torch.nn.functional.layer_norm
Napi::Value layerNorm(const Napi::CallbackInfo& info) {
  RET(at::layer_norm(T(ARG(0)), Ints(ARG(1), "normalizedShape"), OptT(ARG(2)), OptT(ARG(3)), Num(ARG(4), "eps")));
}

void Register(Napi::Env env, Napi::Object exports) {
  EXPORT(silu); EXPORT(gelu); EXPORT(hardswish); EXPORT(hardsigmoid); EXPORT(layerNorm);
}

}  // namespace

void unet::RegisterActivations(Napi::Env env, Napi::Object exports) { Register(env, exports); }
