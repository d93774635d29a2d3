// Stand-in for a libtorch header that Debian's libtorch-dev does not ship but c10d/reducer.hpp
// includes. It declares only what reducer.hpp uses (a callback type and a pointer alias), so the
// Reducer's layout is unchanged. The build adds this folder with -idirafter: a libtorch that has the
// real header (pip wheels) uses that one.
#pragma once
#include <ATen/core/Tensor.h>

#include <functional>
#include <memory>

namespace torch {
namespace distributed {
namespace autograd {
class DistAutogradContext {
 public:
  using GradCallback = std::function<bool(at::Tensor&)>;
};
using ContextPtr = std::shared_ptr<DistAutogradContext>;
}  // namespace autograd
}  // namespace distributed
}  // namespace torch
