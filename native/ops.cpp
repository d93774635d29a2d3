// The tensor operations: creation, views, elementwise math, reductions, the neural-network ops,
// in-place updates and the foreach lists of the optimizers. Each is a thin call into ATen.
#include "addon.h"

#include <string>
#include <vector>

namespace {

using namespace unet;

// --------------------------------- creation ---------------------------------------------------
Napi::Value zeros(const Napi::CallbackInfo& info) { RET(at::zeros(Ints(ARG(0), "shape"), Opts(ARG(1), ARG(2)))); }
Napi::Value ones(const Napi::CallbackInfo& info) { RET(at::ones(Ints(ARG(0), "shape"), Opts(ARG(1), ARG(2)))); }
Napi::Value empty(const Napi::CallbackInfo& info) { RET(at::empty(Ints(ARG(0), "shape"), Opts(ARG(1), ARG(2)))); }
Napi::Value full(const Napi::CallbackInfo& info) { RET(at::full(Ints(ARG(0), "shape"), Scal(ARG(1)), Opts(ARG(2), ARG(3)))); }
Napi::Value rand(const Napi::CallbackInfo& info) { RET(at::rand(Ints(ARG(0), "shape"), Opts(ARG(1), ARG(2)))); }
Napi::Value randn(const Napi::CallbackInfo& info) { RET(at::randn(Ints(ARG(0), "shape"), Opts(ARG(1), ARG(2)))); }
Napi::Value randint(const Napi::CallbackInfo& info) {
  at::TensorOptions o = Opts(ARG(3).IsUndefined() ? Napi::String::New(ENV, "int64") : ARG(3), ARG(4));
  RET(at::randint(Int(ARG(0), "low"), Int(ARG(1), "high"), Ints(ARG(2), "shape"), o));
}
Napi::Value randperm(const Napi::CallbackInfo& info) { RET(at::randperm(Int(ARG(0), "n"), at::TensorOptions().dtype(at::kLong).device(Dev(ARG(1))))); }
Napi::Value uniform_(const Napi::CallbackInfo& info) { T(ARG(0)).uniform_(Num(ARG(1), "from"), Num(ARG(2), "to")); return ARG(0); }
Napi::Value normal_(const Napi::CallbackInfo& info) { T(ARG(0)).normal_(Num(ARG(1), "mean"), Num(ARG(2), "std")); return ARG(0); }
Napi::Value arange(const Napi::CallbackInfo& info) {
  RET(at::arange(Scal(ARG(0)), Scal(ARG(1)), Scal(ARG(2)), Opts(ARG(3).IsUndefined() ? Napi::String::New(ENV, "int64") : ARG(3), ARG(4))));
}

// --------------------------------- conversion & views -----------------------------------------
Napi::Value to(const Napi::CallbackInfo& info) {
  at::Tensor& t = T(ARG(0));
  at::Device d = ARG(1).IsUndefined() || ARG(1).IsNull() ? t.device() : Dev(ARG(1));
  at::ScalarType st = ARG(2).IsUndefined() || ARG(2).IsNull() ? t.scalar_type() : DType(ARG(2));
  RET(t.to(d, st, /*non_blocking=*/Bool(ARG(3)), /*copy=*/Bool(ARG(4))));
}
Napi::Value contiguous(const Napi::CallbackInfo& info) { RET(T(ARG(0)).contiguous(Fmt(ARG(1)))); }
Napi::Value clone(const Napi::CallbackInfo& info) { RET(T(ARG(0)).clone(Fmt(ARG(1).IsUndefined() ? Napi::String::New(ENV, "preserve") : ARG(1)))); }
Napi::Value pinMemory(const Napi::CallbackInfo& info) {
  if (!at::detail::getCUDAHooks().hasCUDA()) RET(T(ARG(0)));
  RET(T(ARG(0)).pin_memory());
}
Napi::Value detach(const Napi::CallbackInfo& info) { RET(T(ARG(0)).detach()); }
Napi::Value reshape(const Napi::CallbackInfo& info) { RET(T(ARG(0)).reshape(Ints(ARG(1), "shape"))); }
Napi::Value view(const Napi::CallbackInfo& info) { RET(T(ARG(0)).view(Ints(ARG(1), "shape"))); }
Napi::Value permute(const Napi::CallbackInfo& info) { RET(T(ARG(0)).permute(Ints(ARG(1), "dims"))); }
Napi::Value transpose(const Napi::CallbackInfo& info) { RET(T(ARG(0)).transpose(Int(ARG(1), "dim0"), Int(ARG(2), "dim1"))); }
Napi::Value slice(const Napi::CallbackInfo& info) {
  c10::optional<int64_t> start = ARG(2).IsNull() || ARG(2).IsUndefined() ? c10::nullopt : c10::optional<int64_t>(Int(ARG(2), "start"));
  c10::optional<int64_t> end = ARG(3).IsNull() || ARG(3).IsUndefined() ? c10::nullopt : c10::optional<int64_t>(Int(ARG(3), "end"));
  int64_t step = ARG(4).IsUndefined() ? 1 : Int(ARG(4), "step");
  RET(T(ARG(0)).slice(Int(ARG(1), "dim"), start, end, step));
}
Napi::Value narrow(const Napi::CallbackInfo& info) { RET(T(ARG(0)).narrow(Int(ARG(1), "dim"), Int(ARG(2), "start"), Int(ARG(3), "length"))); }
Napi::Value select(const Napi::CallbackInfo& info) { RET(T(ARG(0)).select(Int(ARG(1), "dim"), Int(ARG(2), "index"))); }
Napi::Value indexSelect(const Napi::CallbackInfo& info) { RET(T(ARG(0)).index_select(Int(ARG(1), "dim"), T(ARG(2)))); }
Napi::Value gather(const Napi::CallbackInfo& info) { RET(T(ARG(0)).gather(Int(ARG(1), "dim"), T(ARG(2)))); }
Napi::Value maskedSelect(const Napi::CallbackInfo& info) { RET(T(ARG(0)).masked_select(T(ARG(1)))); }
Napi::Value squeeze(const Napi::CallbackInfo& info) {
  if (ARG(1).IsUndefined() || ARG(1).IsNull()) RET(T(ARG(0)).squeeze());
  RET(T(ARG(0)).squeeze(Int(ARG(1), "dim")));
}
Napi::Value unsqueeze(const Napi::CallbackInfo& info) { RET(T(ARG(0)).unsqueeze(Int(ARG(1), "dim"))); }
Napi::Value flatten(const Napi::CallbackInfo& info) {
  RET(T(ARG(0)).flatten(ARG(1).IsUndefined() ? 0 : Int(ARG(1), "start"), ARG(2).IsUndefined() ? -1 : Int(ARG(2), "end")));
}
Napi::Value expand(const Napi::CallbackInfo& info) { RET(T(ARG(0)).expand(Ints(ARG(1), "shape"))); }
Napi::Value cat(const Napi::CallbackInfo& info) { RET(at::cat(Tensors(ARG(0)), ARG(1).IsUndefined() ? 0 : Int(ARG(1), "dim"))); }
Napi::Value stack(const Napi::CallbackInfo& info) { RET(at::stack(Tensors(ARG(0)), ARG(1).IsUndefined() ? 0 : Int(ARG(1), "dim"))); }
Napi::Value chunk(const Napi::CallbackInfo& info) { return WrapList(ENV, T(ARG(0)).chunk(Int(ARG(1), "chunks"), Int(ARG(2), "dim"))); }

// --------------------------------- elementwise ------------------------------------------------
// Binary ops take a tensor or a number on the right.
#define BINARY(name, expr)                                                        \
  Napi::Value name(const Napi::CallbackInfo& info) {                              \
    at::Tensor& a = T(ARG(0));                                                    \
    if (IsTensor(ARG(1))) { at::Tensor& b = T(ARG(1)); RET(expr); }              \
    at::Scalar b = Scal(ARG(1));                                                  \
    RET(expr);                                                                    \
  }
BINARY(mul, a.mul(b))
BINARY(div, a.div(b))
BINARY(pow, a.pow(b))
BINARY(eq, a.eq(b))
BINARY(ne, a.ne(b))
BINARY(lt, a.lt(b))
BINARY(le, a.le(b))
BINARY(gt, a.gt(b))
BINARY(ge, a.ge(b))
BINARY(remainder, a.remainder(b))
Napi::Value add(const Napi::CallbackInfo& info) {
  at::Scalar alpha = ARG(2).IsUndefined() ? at::Scalar(1) : Scal(ARG(2));
  if (IsTensor(ARG(1))) RET(T(ARG(0)).add(T(ARG(1)), alpha));
  RET(T(ARG(0)).add(Scal(ARG(1)), alpha));
}
Napi::Value sub(const Napi::CallbackInfo& info) {
  at::Scalar alpha = ARG(2).IsUndefined() ? at::Scalar(1) : Scal(ARG(2));
  if (IsTensor(ARG(1))) RET(T(ARG(0)).sub(T(ARG(1)), alpha));
  RET(T(ARG(0)).sub(Scal(ARG(1)), alpha));
}
Napi::Value maximum(const Napi::CallbackInfo& info) { RET(at::maximum(T(ARG(0)), T(ARG(1)))); }
Napi::Value minimum(const Napi::CallbackInfo& info) { RET(at::minimum(T(ARG(0)), T(ARG(1)))); }
Napi::Value logicalAnd(const Napi::CallbackInfo& info) { RET(T(ARG(0)).logical_and(T(ARG(1)))); }
Napi::Value logicalOr(const Napi::CallbackInfo& info) { RET(T(ARG(0)).logical_or(T(ARG(1)))); }
Napi::Value where(const Napi::CallbackInfo& info) {
  at::Tensor& c = T(ARG(0));
  bool ta = IsTensor(ARG(1)), tb = IsTensor(ARG(2));
  if (ta && tb) RET(at::where(c, T(ARG(1)), T(ARG(2))));
  if (ta) RET(at::where(c, T(ARG(1)), Scal(ARG(2))));
  if (tb) RET(at::where(c, Scal(ARG(1)), T(ARG(2))));
  RET(at::where(c, Scal(ARG(1)), Scal(ARG(2))));
}

#define UNARY(name, expr) \
  Napi::Value name(const Napi::CallbackInfo& info) { at::Tensor& a = T(ARG(0)); RET(expr); }
UNARY(neg, a.neg())
UNARY(abs, a.abs())
UNARY(exp, a.exp())
UNARY(log, a.log())
UNARY(log1p, a.log1p())
UNARY(sqrt, a.sqrt())
UNARY(rsqrt, a.rsqrt())
UNARY(sigmoid, a.sigmoid())
UNARY(relu, a.relu())
UNARY(tanh, a.tanh())
UNARY(square, a.square())
UNARY(reciprocal, a.reciprocal())
UNARY(floor, a.floor())
UNARY(ceil, a.ceil())
UNARY(round, a.round())
UNARY(sign, a.sign())
UNARY(isfinite, a.isfinite())
UNARY(isnan, a.isnan())
UNARY(isinf, a.isinf())
UNARY(logicalNot, a.logical_not())
UNARY(sin, a.sin())
UNARY(cos, a.cos())
Napi::Value clamp(const Napi::CallbackInfo& info) {
  c10::optional<at::Scalar> lo, hi;
  if (!(ARG(1).IsNull() || ARG(1).IsUndefined())) lo = Scal(ARG(1));
  if (!(ARG(2).IsNull() || ARG(2).IsUndefined())) hi = Scal(ARG(2));
  RET(T(ARG(0)).clamp(lo, hi));
}

// --------------------------------- reductions -------------------------------------------------
bool AllDims(const Napi::Value& v) { return v.IsUndefined() || v.IsNull(); }
Napi::Value sum(const Napi::CallbackInfo& info) {
  at::Tensor& a = T(ARG(0));
  c10::optional<at::ScalarType> dt = OptDType(ARG(3));
  if (AllDims(ARG(1))) RET(a.sum(dt));
  RET(a.sum(Ints(ARG(1), "dims"), Bool(ARG(2)), dt));
}
Napi::Value mean(const Napi::CallbackInfo& info) {
  at::Tensor& a = T(ARG(0));
  if (AllDims(ARG(1))) RET(a.mean());
  RET(a.mean(Ints(ARG(1), "dims"), Bool(ARG(2))));
}
Napi::Value amax(const Napi::CallbackInfo& info) {
  at::Tensor& a = T(ARG(0));
  if (AllDims(ARG(1))) RET(a.max());
  RET(a.amax(Ints(ARG(1), "dims"), Bool(ARG(2))));
}
Napi::Value amin(const Napi::CallbackInfo& info) {
  at::Tensor& a = T(ARG(0));
  if (AllDims(ARG(1))) RET(a.min());
  RET(a.amin(Ints(ARG(1), "dims"), Bool(ARG(2))));
}
Napi::Value argmax(const Napi::CallbackInfo& info) {
  at::Tensor& a = T(ARG(0));
  if (AllDims(ARG(1))) RET(a.argmax());
  RET(a.argmax(Int(ARG(1), "dim"), Bool(ARG(2))));
}
Napi::Value argmin(const Napi::CallbackInfo& info) {
  at::Tensor& a = T(ARG(0));
  if (AllDims(ARG(1))) RET(a.argmin());
  RET(a.argmin(Int(ARG(1), "dim"), Bool(ARG(2))));
}
Napi::Value all(const Napi::CallbackInfo& info) { RET(T(ARG(0)).all()); }
Napi::Value any(const Napi::CallbackInfo& info) { RET(T(ARG(0)).any()); }
Napi::Value norm(const Napi::CallbackInfo& info) {
  at::Tensor& a = T(ARG(0));
  at::Scalar p = ARG(1).IsUndefined() ? at::Scalar(2.0) : Scal(ARG(1));
  if (AllDims(ARG(2))) RET(a.norm(p));
  RET(a.norm(p, Ints(ARG(2), "dims"), Bool(ARG(3))));
}
Napi::Value var(const Napi::CallbackInfo& info) {
  at::Tensor& a = T(ARG(0));
  if (AllDims(ARG(1))) RET(a.var(Bool(ARG(3))));
  RET(a.var(at::IntArrayRef(Ints(ARG(1), "dims")), Bool(ARG(3)), Bool(ARG(2))));
}
Napi::Value bincount(const Napi::CallbackInfo& info) {
  RET(at::bincount(T(ARG(0)), OptT(ARG(1)), ARG(2).IsUndefined() ? 0 : Int(ARG(2), "minlength")));
}
Napi::Value matmul(const Napi::CallbackInfo& info) { RET(at::matmul(T(ARG(0)), T(ARG(1)))); }
// [values, indices] along dim; stable so that ties keep their order on every device (Lovasz losses).
Napi::Value sort(const Napi::CallbackInfo& info) {
  auto r = at::sort(T(ARG(0)), c10::optional<bool>(true), Int(ARG(1), "dim"), Bool(ARG(2)));
  return WrapList(ENV, {std::get<0>(r), std::get<1>(r)});
}
Napi::Value cumsum(const Napi::CallbackInfo& info) { RET(T(ARG(0)).cumsum(Int(ARG(1), "dim"))); }

// --------------------------------- neural-network ops -----------------------------------------
Napi::Value conv2d(const Napi::CallbackInfo& info) {
  RET(at::conv2d(T(ARG(0)), T(ARG(1)), OptT(ARG(2)), Ints(ARG(3), "stride"), Ints(ARG(4), "padding"), Ints(ARG(5), "dilation"),
                 Int(ARG(6), "groups")));
}
Napi::Value convTranspose2d(const Napi::CallbackInfo& info) {
  RET(at::conv_transpose2d(T(ARG(0)), T(ARG(1)), OptT(ARG(2)), Ints(ARG(3), "stride"), Ints(ARG(4), "padding"),
                           Ints(ARG(5), "output_padding"), Int(ARG(6), "groups"), Ints(ARG(7), "dilation")));
}
// batchNorm(x, weight, bias, runningMean, runningVar, training, momentum, eps): updates running
// stats in place when training, as torch.nn.functional.batch_norm does.
Napi::Value batchNorm(const Napi::CallbackInfo& info) {
  RET(at::batch_norm(T(ARG(0)), OptT(ARG(1)), OptT(ARG(2)), OptT(ARG(3)), OptT(ARG(4)), Bool(ARG(5)), Num(ARG(6), "momentum"),
                     Num(ARG(7), "eps"), at::globalContext().userEnabledCuDNN()));
}
Napi::Value maxPool2d(const Napi::CallbackInfo& info) {
  RET(at::max_pool2d(T(ARG(0)), Ints(ARG(1), "kernel_size"), Ints(ARG(2), "stride"), Ints(ARG(3), "padding"),
                     Ints(ARG(4), "dilation"), Bool(ARG(5))));
}
Napi::Value avgPool2d(const Napi::CallbackInfo& info) {
  RET(at::avg_pool2d(T(ARG(0)), Ints(ARG(1), "kernel_size"), Ints(ARG(2), "stride"), Ints(ARG(3), "padding")));
}
// interpolate(x, [outH, outW], mode, alignCorners): 'nearest' | 'bilinear' | 'bicubic'.
Napi::Value interpolate(const Napi::CallbackInfo& info) {
  at::Tensor& x = T(ARG(0));
  std::vector<int64_t> size = Ints(ARG(1), "size");
  if (size.size() != 2) TypeErr(ENV, "interpolate size must be [height, width]");
  std::string mode = Str(ARG(2), "mode");
  bool ac = Bool(ARG(3));
  if (mode == "bilinear") RET(at::upsample_bilinear2d(x, size, ac));
  if (mode == "bicubic") RET(at::upsample_bicubic2d(x, size, ac));
  if (mode == "nearest") RET(at::upsample_nearest2d(x, size));
  TypeErr(ENV, "unknown interpolate mode '" + mode + "'");
}
Napi::Value softmax(const Napi::CallbackInfo& info) { RET(at::softmax(T(ARG(0)), Int(ARG(1), "dim"), OptDType(ARG(2)))); }
Napi::Value logSoftmax(const Napi::CallbackInfo& info) { RET(at::log_softmax(T(ARG(0)), Int(ARG(1), "dim"), OptDType(ARG(2)))); }
int64_t Reduction(const Napi::Value& v) {
  if (v.IsUndefined()) return at::Reduction::Mean;
  std::string r = Str(v, "reduction");
  if (r == "mean") return at::Reduction::Mean;
  if (r == "sum") return at::Reduction::Sum;
  if (r == "none") return at::Reduction::None;
  TypeErr(v.Env(), "reduction must be mean, sum or none");
}
// crossEntropy(logits [N,C,...], target [N,...] int64, weight|null, reduction, ignoreIndex, labelSmoothing)
Napi::Value crossEntropy(const Napi::CallbackInfo& info) {
  RET(at::cross_entropy_loss(T(ARG(0)), T(ARG(1)), OptT(ARG(2)), Reduction(ARG(3)), ARG(4).IsUndefined() ? -100 : Int(ARG(4), "ignore_index"),
                             ARG(5).IsUndefined() ? 0.0 : Num(ARG(5), "label_smoothing")));
}
Napi::Value bceWithLogits(const Napi::CallbackInfo& info) {
  RET(at::binary_cross_entropy_with_logits(T(ARG(0)), T(ARG(1)), OptT(ARG(2)), OptT(ARG(3)), Reduction(ARG(4))));
}
Napi::Value mseLoss(const Napi::CallbackInfo& info) { RET(at::mse_loss(T(ARG(0)), T(ARG(1)), Reduction(ARG(2)))); }
Napi::Value oneHot(const Napi::CallbackInfo& info) { RET(at::one_hot(T(ARG(0)), Int(ARG(1), "num_classes"))); }
// pad(x, [left, right, top, bottom, ...], mode, value)
Napi::Value pad(const Napi::CallbackInfo& info) {
  std::vector<int64_t> p = Ints(ARG(1), "pad");
  std::string mode = ARG(2).IsUndefined() ? "constant" : Str(ARG(2), "mode");
  if (mode == "constant") RET(at::constant_pad_nd(T(ARG(0)), p, ARG(3).IsUndefined() ? at::Scalar(0) : Scal(ARG(3))));
  if (mode == "reflect" && p.size() == 4) RET(at::reflection_pad2d(T(ARG(0)), p));
  if (mode == "replicate" && p.size() == 4) RET(at::replication_pad2d(T(ARG(0)), p));
  TypeErr(ENV, "unsupported pad mode '" + mode + "'");
}
Napi::Value dropout(const Napi::CallbackInfo& info) { RET(at::dropout(T(ARG(0)), Num(ARG(1), "p"), Bool(ARG(2)))); }

// --------------------------------- in-place (return the same JS object) ------------------------
#define INPLACE_BIN(name, expr_t, expr_s)                                          \
  Napi::Value name(const Napi::CallbackInfo& info) {                                \
    at::Tensor& a = T(ARG(0));                                                      \
    if (IsTensor(ARG(1))) { at::Tensor& b = T(ARG(1)); expr_t; }                   \
    else { at::Scalar b = Scal(ARG(1)); expr_s; }                                  \
    return ARG(0);                                                                  \
  }
INPLACE_BIN(mul_, a.mul_(b), a.mul_(b))
INPLACE_BIN(div_, a.div_(b), a.div_(b))
Napi::Value add_(const Napi::CallbackInfo& info) {
  at::Scalar alpha = ARG(2).IsUndefined() ? at::Scalar(1) : Scal(ARG(2));
  if (IsTensor(ARG(1))) T(ARG(0)).add_(T(ARG(1)), alpha);
  else T(ARG(0)).add_(Scal(ARG(1)), alpha);
  return ARG(0);
}
Napi::Value addcmul_(const Napi::CallbackInfo& info) { T(ARG(0)).addcmul_(T(ARG(1)), T(ARG(2)), Scal(ARG(3))); return ARG(0); }
Napi::Value addcdiv_(const Napi::CallbackInfo& info) { T(ARG(0)).addcdiv_(T(ARG(1)), T(ARG(2)), Scal(ARG(3))); return ARG(0); }
Napi::Value lerp_(const Napi::CallbackInfo& info) { T(ARG(0)).lerp_(T(ARG(1)), Scal(ARG(2))); return ARG(0); }
Napi::Value copy_(const Napi::CallbackInfo& info) { T(ARG(0)).copy_(T(ARG(1)), Bool(ARG(2))); return ARG(0); }
Napi::Value zero_(const Napi::CallbackInfo& info) { T(ARG(0)).zero_(); return ARG(0); }
Napi::Value fill_(const Napi::CallbackInfo& info) { T(ARG(0)).fill_(Scal(ARG(1))); return ARG(0); }
Napi::Value sqrt_(const Napi::CallbackInfo& info) { T(ARG(0)).sqrt_(); return ARG(0); }
Napi::Value relu_(const Napi::CallbackInfo& info) { T(ARG(0)).relu_(); return ARG(0); }
Napi::Value clamp_(const Napi::CallbackInfo& info) {
  c10::optional<at::Scalar> lo, hi;
  if (!(ARG(1).IsNull() || ARG(1).IsUndefined())) lo = Scal(ARG(1));
  if (!(ARG(2).IsNull() || ARG(2).IsUndefined())) hi = Scal(ARG(2));
  T(ARG(0)).clamp_(lo, hi);
  return ARG(0);
}
// setData(param, value): replaces a parameter's data keeping its identity (like p.data = v).
Napi::Value setData(const Napi::CallbackInfo& info) { T(ARG(0)).set_data(T(ARG(1))); return ARG(0); }

// --------------------------------- foreach (optimizer building blocks) ------------------------
// Scalar-or-list right-hand sides, mirroring torch._foreach_*.
Napi::Value foreachAdd_(const Napi::CallbackInfo& info) {
  auto xs = Tensors(ARG(0));
  if (ARG(1).IsArray()) at::_foreach_add_(xs, Tensors(ARG(1)), ARG(2).IsUndefined() ? at::Scalar(1) : Scal(ARG(2)));
  else at::_foreach_add_(xs, Scal(ARG(1)));
  return ENV.Undefined();
}
Napi::Value foreachAdd(const Napi::CallbackInfo& info) {
  auto xs = Tensors(ARG(0));
  if (ARG(1).IsArray()) return WrapList(ENV, at::_foreach_add(xs, Tensors(ARG(1)), ARG(2).IsUndefined() ? at::Scalar(1) : Scal(ARG(2))));
  return WrapList(ENV, at::_foreach_add(xs, Scal(ARG(1))));
}
Napi::Value foreachMul_(const Napi::CallbackInfo& info) {
  auto xs = Tensors(ARG(0));
  if (ARG(1).IsArray()) at::_foreach_mul_(xs, Tensors(ARG(1)));
  else if (IsTensor(ARG(1))) {
    at::Tensor s = T(ARG(1));  // a one-element tensor: multiply without a host sync
    for (auto& x : xs) x.mul_(s);
  } else at::_foreach_mul_(xs, Scal(ARG(1)));
  return ENV.Undefined();
}
Napi::Value foreachDiv_(const Napi::CallbackInfo& info) {
  auto xs = Tensors(ARG(0));
  if (ARG(1).IsArray()) at::_foreach_div_(xs, Tensors(ARG(1)));
  else at::_foreach_div_(xs, Scal(ARG(1)));
  return ENV.Undefined();
}
Napi::Value foreachAddcmul_(const Napi::CallbackInfo& info) {
  auto xs = Tensors(ARG(0));
  at::_foreach_addcmul_(xs, Tensors(ARG(1)), Tensors(ARG(2)), Scal(ARG(3)));
  return ENV.Undefined();
}
Napi::Value foreachAddcdiv_(const Napi::CallbackInfo& info) {
  auto xs = Tensors(ARG(0));
  at::_foreach_addcdiv_(xs, Tensors(ARG(1)), Tensors(ARG(2)), Scal(ARG(3)));
  return ENV.Undefined();
}
Napi::Value foreachSqrt(const Napi::CallbackInfo& info) { return WrapList(ENV, at::_foreach_sqrt(Tensors(ARG(0)))); }
Napi::Value foreachZero_(const Napi::CallbackInfo& info) {
  auto xs = Tensors(ARG(0));
  at::_foreach_zero_(xs);
  return ENV.Undefined();
}
Napi::Value foreachLerp_(const Napi::CallbackInfo& info) {
  auto xs = Tensors(ARG(0));
  auto ys = Tensors(ARG(1));
  at::Scalar w = Scal(ARG(2));
  for (size_t i = 0; i < xs.size(); i++) xs[i].lerp_(ys[i], w);
  return ENV.Undefined();
}
Napi::Value foreachCopy_(const Napi::CallbackInfo& info) {
  auto xs = Tensors(ARG(0));
  auto ys = Tensors(ARG(1));
  if (xs.size() != ys.size()) TypeErr(ENV, "foreachCopy_ lists differ in length");
  for (size_t i = 0; i < xs.size(); i++) xs[i].copy_(ys[i]);
  return ENV.Undefined();
}
// Per-tensor 2-norms as one stacked fp32 tensor (for clip_grad_norm_).
Napi::Value foreachNorm(const Napi::CallbackInfo& info) {
  auto xs = Tensors(ARG(0));
  std::vector<at::Tensor> norms;
  norms.reserve(xs.size());
  for (auto& x : xs) norms.push_back(x.norm(2).to(at::kFloat));
  if (norms.empty()) RET(at::zeros({0}));
  RET(at::stack(norms));
}

void Register(Napi::Env env, Napi::Object exports) {
  EXPORT(zeros); EXPORT(ones); EXPORT(empty); EXPORT(full); EXPORT(rand); EXPORT(randn); EXPORT(randint); EXPORT(randperm);
  EXPORT(uniform_); EXPORT(normal_); EXPORT(arange);
  EXPORT(to); EXPORT(contiguous); EXPORT(clone); EXPORT(pinMemory); EXPORT(detach); EXPORT(reshape); EXPORT(view); EXPORT(permute);
  EXPORT(transpose); EXPORT(slice); EXPORT(narrow); EXPORT(select); EXPORT(indexSelect); EXPORT(gather); EXPORT(maskedSelect);
  EXPORT(squeeze); EXPORT(unsqueeze); EXPORT(flatten); EXPORT(expand); EXPORT(cat); EXPORT(stack); EXPORT(chunk);
  EXPORT(add); EXPORT(sub); EXPORT(mul); EXPORT(div); EXPORT(pow); EXPORT(eq); EXPORT(ne); EXPORT(lt); EXPORT(le); EXPORT(gt);
  EXPORT(ge); EXPORT(remainder); EXPORT(maximum); EXPORT(minimum); EXPORT(logicalAnd); EXPORT(logicalOr); EXPORT(where);
  EXPORT(neg); EXPORT(abs); EXPORT(exp); EXPORT(log); EXPORT(log1p); EXPORT(sqrt); EXPORT(rsqrt); EXPORT(sigmoid); EXPORT(relu);
  EXPORT(tanh); EXPORT(square); EXPORT(reciprocal); EXPORT(floor); EXPORT(ceil); EXPORT(round); EXPORT(sign); EXPORT(isfinite);
  EXPORT(isnan); EXPORT(isinf); EXPORT(logicalNot); EXPORT(sin); EXPORT(cos); EXPORT(clamp);
  EXPORT(sum); EXPORT(mean); EXPORT(amax); EXPORT(amin); EXPORT(argmax); EXPORT(argmin); EXPORT(all); EXPORT(any); EXPORT(norm);
  EXPORT(var); EXPORT(bincount); EXPORT(matmul);
  EXPORT(sort); EXPORT(cumsum);
  EXPORT(conv2d); EXPORT(convTranspose2d); EXPORT(batchNorm); EXPORT(maxPool2d); EXPORT(avgPool2d); EXPORT(interpolate);
  EXPORT(softmax); EXPORT(logSoftmax); EXPORT(crossEntropy); EXPORT(bceWithLogits); EXPORT(mseLoss); EXPORT(oneHot); EXPORT(pad);
  EXPORT(dropout);
  EXPORT(add_); EXPORT(mul_); EXPORT(div_); EXPORT(addcmul_); EXPORT(addcdiv_); EXPORT(lerp_); EXPORT(copy_); EXPORT(zero_);
  EXPORT(fill_); EXPORT(sqrt_); EXPORT(relu_); EXPORT(clamp_); EXPORT(setData);
  EXPORT(foreachAdd_); EXPORT(foreachAdd); EXPORT(foreachMul_); EXPORT(foreachDiv_); EXPORT(foreachAddcmul_); EXPORT(foreachAddcdiv_);
  EXPORT(foreachSqrt); EXPORT(foreachZero_); EXPORT(foreachLerp_); EXPORT(foreachCopy_); EXPORT(foreachNorm);
}

}  // namespace

void unet::RegisterOps(Napi::Env env, Napi::Object exports) { Register(env, exports); }
