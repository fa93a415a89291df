// One fused pass per time step over the elementwise part of every recurrent cell.
//
// rnnuniv/fused.py runs a whole trajectory as: per step, one batched matmul (h @ U, done by
// torch) and one call here, which computes the input drive a = x_t W + bias, every gate and the
// new state (forward), or every pre-activation gradient and the carry to step t-1 (backward), in
// a single sweep over the rows of the batch. The pure-torch path of fused.py does the same in a
// dozen separate kernels, each streaming its operands through memory; the formulas, buffers and
// names are those of fused.py's module docstring, which is the specification of this file.
//
// Every tensor is [N, R, C] (networks, rows, columns) with unit stride along C; N and R strides
// are free, so time slices of [N, T, B, C] buffers and inputs expanded over N are taken in place.
//
// float32 uses a rational approximation of tanh (max abs error ~3e-7, vectorised by the
// compiler; libm's tanhf is not) and sigmoid(x) = (1 + tanh(x / 2)) / 2. float64 uses std::tanh,
// so the float64 tests check the kernels' algebra to rounding.

// The narrowest headers that declare what this file uses (Tensor, the dtype dispatch, the
// Tensor <-> Python conversion): torch/extension.h, all of libtorch's C++ API, made the build
// on every fresh machine 36 s instead of 14 s.
#include <ATen/Dispatch.h>
#include <ATen/core/Tensor.h>
#include <torch/csrc/utils/pybind.h>
#include <ATen/Parallel.h>

#include <cmath>
#include <cstdint>
#include <vector>

namespace {

enum Arch : int64_t { kVanilla = 0, kUgrnn = 1, kGru = 2, kLstm = 3 };

template <typename T>
struct Rows {
  T* data = nullptr;
  int64_t s_net = 0, s_row = 0, n_rows = 1;
  Rows() = default;
  explicit Rows(const at::Tensor& t) {
    if (!t.defined()) return;
    TORCH_CHECK(t.dim() == 3, "expected an [N, R, C] tensor, got ", t.dim(), " dimensions");
    TORCH_CHECK(t.size(2) <= 1 || t.stride(2) == 1, "expected unit stride along the last axis");
    data = t.data_ptr<T>();
    s_net = t.stride(0);
    s_row = t.stride(1);
    n_rows = t.size(1);
  }
  T* operator()(int64_t r) const { return data + (r / n_rows) * s_net + (r % n_rows) * s_row; }
  explicit operator bool() const { return data != nullptr; }
};

// Eigen's float tanh: a [13/6] rational function on [-7.905, 7.905], saturated outside. The
// comparisons are written so that a NaN input stays NaN (a diverged network must show as one).
inline float tanh_(float x) {
  const float limit = 7.90531110763549805f;
  x = (limit < x) ? limit : x;
  x = (x < -limit) ? -limit : x;
  const float x2 = x * x;
  float p = x2 * -2.76076847742355e-16f + 2.00018790482477e-13f;
  p = x2 * p + -8.60467152213735e-11f;
  p = x2 * p + 5.12229709037114e-08f;
  p = x2 * p + 1.48572235717979e-05f;
  p = x2 * p + 6.37261928875436e-04f;
  p = x2 * p + 4.89352455891786e-03f;
  p = x * p;
  float q = x2 * 1.19825839466702e-06f + 1.18534705686654e-04f;
  q = x2 * q + 2.26843463243900e-03f;
  q = x2 * q + 4.89352518554385e-03f;
  return p / q;
}
inline double tanh_(double x) { return std::tanh(x); }

template <typename T>
inline T sigmoid(T x) {
  return T(0.5) * tanh_(T(0.5) * x) + T(0.5);
}

template <typename T, bool kTanh>
inline T phi(T x) {
  if constexpr (kTanh) return tanh_(x);
  return (x < T(0)) ? T(0) : x;  // ReLU; NaN stays NaN
}

// d phi / du at the point where phi returned y: 1 - y^2 for tanh, [y > 0] for ReLU.
template <typename T, bool kTanh>
inline T phi_prime(T y) {
  if constexpr (kTanh) return T(1) - y * y;
  return (y > T(0)) ? T(1) : T(0);
}

// a = x W + bias for one row: x [m], W [m, width] (row-major), bias [width].
template <typename T>
inline void input_drive(T* a, const T* x, const T* w, const T* bias, int64_t m, int64_t width) {
  for (int64_t j = 0; j < width; ++j) a[j] = bias[j];
  for (int64_t k = 0; k < m; ++k) {
    const T xk = x[k];
    const T* wk = w + k * width;
#pragma omp simd
    for (int64_t j = 0; j < width; ++j) a[j] += xk * wk[j];
  }
}

template <typename T, bool kTanh>
void forward_rows(int64_t arch, int64_t n, const at::Tensor& x, const at::Tensor& w_in,
                  const at::Tensor& bias, const at::Tensor& bias_rec, const at::Tensor& pre,
                  const at::Tensor& prev, const at::Tensor& out, const at::Tensor& acts,
                  const at::Tensor& extra) {
  const Rows<T> X(x), P(pre), S0(prev), S1(out), A(acts), E(extra);
  const int64_t batch = x.size(1), rows = x.size(0) * batch;
  const int64_t m = x.size(2), width = pre.size(2);
  const T* w_base = w_in.data_ptr<T>();
  const T* b_base = bias.data_ptr<T>();
  const T* bhc_base = bias_rec.defined() ? bias_rec.data_ptr<T>() : nullptr;
  at::parallel_for(0, rows, 8, [&](int64_t begin, int64_t end) {
    std::vector<T> drive(width);
    T* a = drive.data();
    for (int64_t r = begin; r < end; ++r) {
      const int64_t net = r / batch;
      input_drive(a, X(r), w_base + net * m * width, b_base + net * width, m, width);
      const T* p = P(r);
      const T* h = S0(r);
      T* s = S1(r);
      if (arch == kVanilla) {
#pragma omp simd
        for (int64_t j = 0; j < n; ++j) s[j] = phi<T, kTanh>(p[j] + a[j]);
      } else if (arch == kUgrnn) {
        T* act = A(r);
#pragma omp simd
        for (int64_t j = 0; j < n; ++j) {
          const T g = sigmoid(p[j] + a[j]);
          const T c = phi<T, kTanh>(p[n + j] + a[n + j]);
          act[j] = g;
          act[n + j] = c;
          s[j] = c + g * (h[j] - c);
        }
      } else if (arch == kGru) {
        T* act = A(r);
        T* cand = E(r);
        const T* bhc = bhc_base + net * n;
#pragma omp simd
        for (int64_t j = 0; j < n; ++j) {
          const T reset = sigmoid(p[j] + a[j]);
          const T update = sigmoid(p[n + j] + a[n + j]);
          const T q = p[2 * n + j] + bhc[j];
          const T c = phi<T, kTanh>(a[2 * n + j] + reset * q);
          act[j] = reset;
          act[n + j] = update;
          act[2 * n + j] = q;
          cand[j] = c;
          s[j] = c + update * (h[j] - c);
        }
      } else {  // LSTM, state [h, c]
        T* act = A(r);
        T* phi_c = E(r);
        const T* c_prev = h + n;
#pragma omp simd
        for (int64_t j = 0; j < n; ++j) {
          const T i = sigmoid(p[j] + a[j]);
          const T f = sigmoid(p[n + j] + a[n + j]);
          const T g = phi<T, kTanh>(p[2 * n + j] + a[2 * n + j]);
          const T o = sigmoid(p[3 * n + j] + a[3 * n + j]);
          const T c = f * c_prev[j] + i * g;
          const T y = phi<T, kTanh>(c);
          act[j] = i;
          act[n + j] = f;
          act[2 * n + j] = g;
          act[3 * n + j] = o;
          phi_c[j] = y;
          s[n + j] = c;
          s[j] = o * y;
        }
      }
    }
  });
}

template <typename T, bool kTanh>
void backward_rows(int64_t arch, int64_t n, const at::Tensor& dh, const at::Tensor& dc,
                   const at::Tensor& grad_prev, const at::Tensor& state, const at::Tensor& prev,
                   const at::Tensor& acts, const at::Tensor& extra, const at::Tensor& d_pre,
                   const at::Tensor& d_cand, const at::Tensor& carry) {
  const Rows<T> DH(dh), DC(dc), GP(grad_prev), S1(state), S0(prev), A(acts), E(extra), DP(d_pre),
      DA(d_cand), CARRY(carry);
  const int64_t rows = dh.size(0) * dh.size(1);
  at::parallel_for(0, rows, 8, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      const T* g_h = DH(r);
      const T* g_prev = GP ? GP(r) : nullptr;  // gradient of the outputs at step t-1, [h, c]
      const T* h_prev = S0(r);
      T* dp = DP(r);
      T* base = CARRY(r);  // becomes: output gradient of h_{t-1} + the path that skips U
      if (arch == kVanilla) {
        const T* s = S1(r);
#pragma omp simd
        for (int64_t j = 0; j < n; ++j) {
          dp[j] = g_h[j] * phi_prime<T, kTanh>(s[j]);
          base[j] = g_prev ? g_prev[j] : T(0);
        }
      } else if (arch == kUgrnn) {
        const T* act = A(r);
#pragma omp simd
        for (int64_t j = 0; j < n; ++j) {
          const T g = act[j], c = act[n + j];
          const T direct = g_h[j] * g;
          dp[j] = g_h[j] * (h_prev[j] - c) * g * (T(1) - g);
          dp[n + j] = (g_h[j] - direct) * phi_prime<T, kTanh>(c);
          base[j] = (g_prev ? g_prev[j] : T(0)) + direct;
        }
      } else if (arch == kGru) {
        const T* act = A(r);
        const T* cand = E(r);
        T* da_c = DA(r);
#pragma omp simd
        for (int64_t j = 0; j < n; ++j) {
          const T reset = act[j], update = act[n + j], q = act[2 * n + j], c = cand[j];
          const T direct = g_h[j] * update;
          const T d_c = (g_h[j] - direct) * phi_prime<T, kTanh>(c);
          da_c[j] = d_c;
          dp[j] = d_c * q * reset * (T(1) - reset);
          dp[n + j] = g_h[j] * (h_prev[j] - c) * update * (T(1) - update);
          dp[2 * n + j] = d_c * reset;
          base[j] = (g_prev ? g_prev[j] : T(0)) + direct;
        }
      } else {  // LSTM
        const T* act = A(r);
        const T* phi_c = E(r);
        const T* c_prev = h_prev + n;
        T* g_c = DC(r);  // in: gradient reaching c_t; out: gradient reaching c_{t-1}
#pragma omp simd
        for (int64_t j = 0; j < n; ++j) {
          const T i = act[j], f = act[n + j], g = act[2 * n + j], o = act[3 * n + j];
          const T y = phi_c[j];
          const T dc_total = g_c[j] + g_h[j] * o * phi_prime<T, kTanh>(y);
          dp[j] = dc_total * g * i * (T(1) - i);
          dp[n + j] = dc_total * c_prev[j] * f * (T(1) - f);
          dp[2 * n + j] = dc_total * i * phi_prime<T, kTanh>(g);
          dp[3 * n + j] = g_h[j] * y * o * (T(1) - o);
          g_c[j] = dc_total * f + (g_prev ? g_prev[n + j] : T(0));
          base[j] = g_prev ? g_prev[j] : T(0);
        }
      }
    }
  });
}

void check_arch(int64_t arch) {
  TORCH_CHECK(arch >= kVanilla && arch <= kLstm, "unknown architecture code ", arch);
}

}  // namespace

// One forward step: writes ``out`` (the new state), ``acts`` and ``extra`` (fused.py's layout).
void forward_step(int64_t arch, bool tanh, int64_t n, at::Tensor x, at::Tensor w_in,
                  at::Tensor bias, std::optional<at::Tensor> bias_rec, at::Tensor pre,
                  at::Tensor prev, at::Tensor out, at::Tensor acts, at::Tensor extra) {
  check_arch(arch);
  TORCH_CHECK(w_in.is_contiguous() && bias.is_contiguous(), "w_in and bias must be contiguous");
  const at::Tensor bhc = bias_rec.has_value() ? bias_rec->contiguous() : at::Tensor();
  TORCH_CHECK(arch != kGru || bhc.defined(), "the GRU needs bias_rec");
  AT_DISPATCH_FLOATING_TYPES(pre.scalar_type(), "forward_step", [&] {
    if (tanh)
      forward_rows<scalar_t, true>(arch, n, x, w_in, bias, bhc, pre, prev, out, acts, extra);
    else
      forward_rows<scalar_t, false>(arch, n, x, w_in, bias, bhc, pre, prev, out, acts, extra);
  });
}

// One backward step: from ``dh`` (and the LSTM's ``dc``, updated in place) writes ``d_pre``,
// the GRU's ``d_cand`` and ``carry`` = grad_prev[h] + the gradient of h_{t-1} that skips U.
void backward_step(int64_t arch, bool tanh, int64_t n, at::Tensor dh, std::optional<at::Tensor> dc,
                   std::optional<at::Tensor> grad_prev, at::Tensor state, at::Tensor prev,
                   at::Tensor acts, at::Tensor extra, at::Tensor d_pre,
                   std::optional<at::Tensor> d_cand, at::Tensor carry) {
  check_arch(arch);
  const at::Tensor dc_ = dc.value_or(at::Tensor()), gp = grad_prev.value_or(at::Tensor()),
                   da = d_cand.value_or(at::Tensor());
  TORCH_CHECK(arch != kLstm || dc_.defined(), "the LSTM needs dc");
  TORCH_CHECK(arch != kGru || da.defined(), "the GRU needs d_cand");
  AT_DISPATCH_FLOATING_TYPES(dh.scalar_type(), "backward_step", [&] {
    if (tanh)
      backward_rows<scalar_t, true>(arch, n, dh, dc_, gp, state, prev, acts, extra, d_pre, da, carry);
    else
      backward_rows<scalar_t, false>(arch, n, dh, dc_, gp, state, prev, acts, extra, d_pre, da, carry);
  });
}

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("forward_step", &forward_step, "one fused forward step of a recurrent cell");
  m.def("backward_step", &backward_step, "one fused backward step of a recurrent cell");
}
