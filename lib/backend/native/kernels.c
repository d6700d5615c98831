// gradlab native kernels: float32 GEMM and NHWC convolutions for TensorFlow.js in Deno.
//
// Why this exists: TF.js has no fast CPU training path in Deno (the wasm backend lacks
// Conv2DBackpropFilter and is limited to 128-bit SIMD without FMA). This library is compiled on
// the user's machine with the system C compiler (-O3 -march=native), loaded through Deno FFI, and
// operates directly on the wasm backend's tensor memory, so no data is copied.
//
// Design (BLIS-style): C[M,N] = A[M,K] . B[K,N] with packed panels and an MR x NR register-tile
// micro-kernel written with GCC vector extensions (AVX-512, AVX2 or NEON, whatever -march gives).
// Convolutions never materialise im2col: the A-panel packer reads image patches directly.
//   forward:          out[N*OH*OW, CO]   = patches(x)[M, KH*KW*CI] . W[KH*KW*CI, CO]
//   filter gradient:  dW[KH*KW*CI, CO]   = patches(x)^T[K, M] . dy[M, CO]      (depth = M, split over threads)
//   input gradient:   dx = conv(dy dilated by the stride, W flipped and in/out-transposed)
// Threads: OpenMP; the caller sets the count with gl_set_threads (at most MAX_THREADS).
//
// Why not a system BLAS's sgemm: measured on exactly the products W1, W3, W3g and W4 make
// (`deno task bench --workload=Wgemm`, 2026-11-30, 2-core AMD EPYC with AVX-512, 1 and 2 threads),
// OpenBLAS 0.3.21 took 1.7-3.4x and BLIS 4.4-6.2x the own kernels' time per workload pass — the
// convolutions, which a BLAS can only run after materialising im2col, by 2-3.6x; the dense layers'
// products by 1.17-1.39x. OpenBLAS wins only the 10-column logits products (0.67-0.95x), under 1 %
// of any pass. The own kernels stay; the README's "Native kernels and BLAS" has the table.

#define MAX_THREADS 64

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <unistd.h>
#if defined(__AVX512F__)
#include <immintrin.h>
#endif
#include <pthread.h>
#include <stdio.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#if defined(__AVX512F__)
#define VL 16
#define MR 12
#else
#define VL 8
#define MR 6
#endif
// The widest register-tile panel (buffers are sized for it); see kernels_for().
#define NR (2 * VL)
#define KC 256
#define MC (MR * 12)
#define NC 2048
// Inputs with fewer channels than this are packed (im2col blocks) rather than read in place.
#define INDIRECT_MIN_CHANNELS 1
// Filter gradients of inputs with fewer channels than a register tile has rows are packed: the
// in-place path would fill each tile from one tap's few channels only.
#define FILTER_INDIRECT_MIN_CHANNELS MR
// Convolutions with at most this many output channels use per-output dot products.
#define NARROW_MAX_OUTPUTS 4

typedef float vf __attribute__((vector_size(VL * 4)));
typedef int vi __attribute__((vector_size(VL * 4)));  // lane masks of vf comparisons (0 or -1)

// mask ? a : b, lane by lane (C has no vector conditional)
static inline vf select_vf(vi mask, vf a, vf b) { return (vf)((mask & (vi)a) | (~mask & (vi)b)); }

enum { ACT_LINEAR = 0, ACT_RELU = 1, ACT_RELU6 = 2, ACT_LEAKY = 3 };

typedef struct {
  const float* bias;  // per output column, or NULL
  int act;
  float alpha;
} epilogue_t;

static int g_threads = 1;

// Split reductions (filter gradients, column sums, batch-norm statistics) add a fixed number of
// partial results, set by the problem size alone: the same inputs give the same bits whatever the
// thread count (which is process-wide, and other runtimes in the process may change it).
#define REDUCE_PARTS 8
static int min_int(int a, int b) { return a < b ? a : b; }

// Memory-bound loops (copies, element-wise passes, batch-norm sums) use the other threads only
// from this many values: waking a sleeping OpenMP thread (OMP_WAIT_POLICY=passive, see
// lib/backend/select.ts) costs about what one core takes to stream a million floats, and in
// W4's fused block at 2 threads the norms, ReLUs and copies of 0.26 M values ran 2× slower
// threaded than alone (0.96 against 0.43 ms a step).
#define MEMORY_PAR_MIN 1e6
static int memory_threads(double n) { return n < MEMORY_PAR_MIN ? 1 : g_threads; }

// One library serves every JavaScript runtime in a process (Deno runs test modules, workers and
// `--parallel` tests on threads of one process), and the scratch buffers below are global: each
// entry point holds this lock for its whole call, so concurrent callers take turns.
// The lock is recursive: fused entry points (the GUNN unit) call the others.
static pthread_mutex_t g_lock;
static pthread_once_t g_lock_once = PTHREAD_ONCE_INIT;
static void init_lock(void) {
  pthread_mutexattr_t a;
  pthread_mutexattr_init(&a);
  pthread_mutexattr_settype(&a, PTHREAD_MUTEX_RECURSIVE);
  pthread_mutex_init(&g_lock, &a);
  pthread_mutexattr_destroy(&a);
}
static void take_lock(void) {
  pthread_once(&g_lock_once, init_lock);
  pthread_mutex_lock(&g_lock);
}
static void release_lock(int* unused) {
  (void)unused;
  pthread_mutex_unlock(&g_lock);
}
#define SERIALIZED                                                           \
  take_lock();                                                               \
  int serialized_guard __attribute__((cleanup(release_lock), unused)) = 0

int gl_set_threads(int n) {
  SERIALIZED;
  if (n < 1) n = 1;
  // the per-thread scratch arrays have MAX_THREADS slots: more threads would write past them
  if (n > MAX_THREADS) n = MAX_THREADS;
  g_threads = n;
#ifdef _OPENMP
  omp_set_num_threads(n);
  return omp_get_max_threads();
#else
  return 1;
#endif
}

int gl_max_threads(void) {
#ifdef _OPENMP
  return omp_get_num_procs();
#else
  return 1;
#endif
}

int gl_vector_width(void) { return VL; }

// ---------------------------------------------------------------------------------------------
// Scratch buffers: grown on demand, never shrunk, 64-byte aligned; one per thread for A panels,
// one shared for B panels. Re-using them avoids page-faulting fresh memory on every call.

// The first allocation failure since the last gl_take_error(): the entry point that met it skips
// its work and the TypeScript wrapper throws this message (kernels.ts), instead of a crash.
static char g_error[200];
static volatile int g_error_set;

static void alloc_failed(const char* what, size_t bytes) {
#pragma omp critical(gl_error)
  if (!g_error_set) {
    snprintf(g_error, sizeof g_error, "could not allocate %.1f MiB for %s",
             (double)bytes / (1 << 20), what);
    g_error_set = 1;
  }
}

// Copies the pending error into buf (cap bytes) and clears it; returns 1 if there was one.
int gl_take_error(char* buf, int cap) {
  if (!g_error_set) return 0;
  snprintf(buf, (size_t)cap, "%s", g_error);
  g_error_set = 0;
  return 1;
}

static float* grow(float** buf, size_t* cap, size_t n);
static float* g_probe;
static size_t g_probecap;

// Grows a scratch buffer to n floats (as a double: sizes past 2^53 are only for failing) and
// frees it again; 1 if that worked. The allocation-failure path's test.
int gl_scratch_probe(double n) {
  size_t want = n >= 1.8e19 ? SIZE_MAX / 8 : (size_t)n;
  float* p = grow(&g_probe, &g_probecap, want);
  free(g_probe);
  g_probe = NULL;
  g_probecap = 0;
  return p != NULL;
}

// Grows a scratch buffer to n floats; NULL (and the error recorded) when memory runs out.
static float* grow(float** buf, size_t* cap, size_t n) {
  if (n > *cap) {
    free(*buf);
    size_t bytes = ((n * sizeof(float) + 63) / 64) * 64;
    *buf = (float*)aligned_alloc(64, bytes);
    *cap = *buf ? n : 0;
    if (!*buf) alloc_failed("scratch buffers", bytes);
  }
  return *buf;
}

static float* g_abuf[MAX_THREADS];
static size_t g_acap[MAX_THREADS];
static float* g_bbuf;
static size_t g_bcap;
static float* g_bloc[MAX_THREADS];  // per-thread B panels (serial GEMMs inside parallel regions)
static size_t g_blcap[MAX_THREADS];
static float* g_part[MAX_THREADS];  // per-thread partial results of split reductions
static size_t g_pcap[MAX_THREADS];
static float* g_wbuf;
static size_t g_wcap;

static int thread_id(void) {
#ifdef _OPENMP
  return omp_get_thread_num();
#else
  return 0;
#endif
}

static int omp_threads(void) {
#ifdef _OPENMP
  return omp_get_num_threads();
#else
  return 1;
#endif
}

// ---------------------------------------------------------------------------------------------
// Micro-kernel: acc[MR][NR] = sum_p a[p*MR + r] * b[p*NR + c], then stored into C with optional
// accumulation and epilogue.

static inline float apply_act(float v, int act, float alpha) {
  switch (act) {
    case ACT_RELU: return v > 0.f ? v : 0.f;
    case ACT_RELU6: return v < 0.f ? 0.f : (v > 6.f ? 6.f : v);
    case ACT_LEAKY: return v > 0.f ? v : alpha * v;
    default: return v;
  }
}

// Register tiles are MR rows by nv·VL columns with nv ∈ {1, 2}: outputs of at most VL columns
// (6- or 16-channel convolutions, say) use the one-vector kernels and waste no lanes. The kernels
// are written once for a compile-time nv and instantiated for both.
#define ALWAYS_INLINE static inline __attribute__((always_inline))

// apply_act on each lane (the same comparisons, so the same results, NaN and -0 included).
ALWAYS_INLINE vf apply_act_vf(vf v, int act, float alpha) {
  const vf zero = (vf){0};
  switch (act) {
    case ACT_RELU: return select_vf(v > zero, v, zero);
    case ACT_RELU6: return select_vf(v < zero, zero, select_vf(v > zero + 6.f, zero + 6.f, v));
    case ACT_LEAKY: return select_vf(v > zero, v, v * alpha);
    default: return v;
  }
}

// The first `lanes` (≤ VL) floats at p, zeros after; and their store.
ALWAYS_INLINE vf load_lanes(const float* p, int lanes) {
  vf v = (vf){0};
  if (lanes == VL)
    memcpy(&v, p, sizeof(vf));
  else
    for (int l = 0; l < lanes; l++) v[l] = p[l];
  return v;
}

ALWAYS_INLINE void store_lanes(float* p, vf v, int lanes) {
  if (lanes == VL)
    memcpy(p, &v, sizeof(vf));
  else
    for (int l = 0; l < lanes; l++) p[l] = v[l];
}

// Writes `lanes` output channels from channel ch on: v, plus the values there when accumulating,
// then the epilogue's bias and activation. Whole vectors, the epilogue too (lane by lane it was a
// fifth of a first layer's forward time: 64 channels on 5×5×3 patches).
ALWAYS_INLINE void store_output(float* px, vf v, int lanes, int accumulate, const epilogue_t* epi,
                                int ch) {
  if (accumulate) v += load_lanes(px, lanes);
  if (epi) {
    if (epi->bias) v += load_lanes(epi->bias + ch, lanes);
    v = apply_act_vf(v, epi->act, epi->alpha);
  }
  store_lanes(px, v, lanes);
}

ALWAYS_INLINE void store_tile_nv(const int nv, vf acc[MR][2], float* restrict c, int ldc, int mr,
                                 int nr, int accumulate, const epilogue_t* epi, int col0) {
  if (nr == nv * VL) {  // whole vectors: lanes known at compile time (a runtime count cost 4 %)
    for (int r = 0; r < mr; r++)
      for (int v = 0; v < nv; v++)
        store_output(c + (size_t)r * ldc + v * VL, acc[r][v], VL, accumulate, epi, col0 + v * VL);
    return;
  }
  for (int r = 0; r < mr; r++)
    for (int v = 0; v * VL < nr; v++)
      store_output(c + (size_t)r * ldc + v * VL, acc[r][v], nr - v * VL < VL ? nr - v * VL : VL,
                   accumulate, epi, col0 + v * VL);
}

// acc[r][·] = Σ_p a[p*MR + r] · b[p*nrw + ·] (packed A and B panels).
ALWAYS_INLINE void micro_kernel_nv(const int nv, int kc, const float* restrict a, const float* restrict b,
                                   float* restrict c, int ldc, int mr, int nr, int accumulate,
                                   const epilogue_t* epi, int col0) {
  const int nrw = nv * VL;
  vf acc[MR][2];
#pragma GCC unroll 16
  for (int r = 0; r < MR; r++) acc[r][0] = acc[r][1] = (vf){0};
  for (int p = 0; p < kc; p++) {
    const vf b0 = *(const vf*)(b + p * nrw);
    const vf b1 = nv > 1 ? *(const vf*)(b + p * nrw + VL) : b0;
    const float* ap = a + p * MR;
#pragma GCC unroll 16
    for (int r = 0; r < MR; r++) {
      acc[r][0] += ap[r] * b0;
      if (nv > 1) acc[r][1] += ap[r] * b1;
    }
  }
  store_tile_nv(nv, acc, c, ldc, mr, nr, accumulate, epi, col0);
}

// The same tile product, but row r of A is read in place through pointers: for tap t the row's
// clen values start at rows[t*MR + r] (an input pixel's channels, or a zero buffer for padding).
// This is a convolution without im2col packing ("indirect GEMM").
ALWAYS_INLINE void micro_kernel_indirect_nv(const int nv, int ntaps, int clen,
                                            const float* const* rows, const float* restrict b,
                                            float* restrict c, int ldc, int mr, int nr,
                                            int accumulate, const epilogue_t* epi, int col0) {
  const int nrw = nv * VL;
  vf acc[MR][2];
#pragma GCC unroll 16
  for (int r = 0; r < MR; r++) acc[r][0] = acc[r][1] = (vf){0};
  for (int t = 0; t < ntaps; t++) {
    const float* rp[MR];
#pragma GCC unroll 16
    for (int r = 0; r < MR; r++) rp[r] = rows[t * MR + r];
    for (int q = 0; q < clen; q++) {
      const vf b0 = *(const vf*)(b);
      const vf b1 = nv > 1 ? *(const vf*)(b + VL) : b0;
      b += nrw;
#pragma GCC unroll 16
      for (int r = 0; r < MR; r++) {
        acc[r][0] += rp[r][q] * b0;
        if (nv > 1) acc[r][1] += rp[r][q] * b1;
      }
    }
  }
  store_tile_nv(nv, acc, c, ldc, mr, nr, accumulate, epi, col0);
}

// Tile product whose A panel is read through one pointer per depth step: at step p the MR row
// values are aps[p][0..MR-1] (for the filter gradient: MR consecutive channels of one pixel).
ALWAYS_INLINE void micro_kernel_ptrs_nv(const int nv, int kc, const float* const* aps,
                                        const float* restrict b, float* restrict c, int ldc,
                                        int mr, int nr, int accumulate) {
  const int nrw = nv * VL;
  vf acc[MR][2];
#pragma GCC unroll 16
  for (int r = 0; r < MR; r++) acc[r][0] = acc[r][1] = (vf){0};
  for (int p = 0; p < kc; p++) {
    const vf b0 = *(const vf*)(b + p * nrw);
    const vf b1 = nv > 1 ? *(const vf*)(b + p * nrw + VL) : b0;
    const float* ap = aps[p];
#pragma GCC unroll 16
    for (int r = 0; r < MR; r++) {
      acc[r][0] += ap[r] * b0;
      if (nv > 1) acc[r][1] += ap[r] * b1;
    }
  }
  store_tile_nv(nv, acc, c, ldc, mr, nr, accumulate, NULL, 0);
}

typedef void (*mk_fn)(int, const float*, const float*, float*, int, int, int, int, const epilogue_t*, int);
typedef void (*mki_fn)(int, int, const float* const*, const float*, float*, int, int, int, int,
                       const epilogue_t*, int);
typedef void (*mkp_fn)(int, const float* const*, const float*, float*, int, int, int, int);

#define INSTANTIATE(NVV)                                                                            \
  static void micro_kernel_##NVV(int kc, const float* a, const float* b, float* c, int ldc,        \
                                 int mr, int nr, int acc, const epilogue_t* e, int col0) {          \
    micro_kernel_nv(NVV, kc, a, b, c, ldc, mr, nr, acc, e, col0);                                  \
  }                                                                                                 \
  static void micro_kernel_indirect_##NVV(int nt, int cl, const float* const* rows, const float* b, \
                                          float* c, int ldc, int mr, int nr, int acc,               \
                                          const epilogue_t* e, int col0) {                          \
    micro_kernel_indirect_nv(NVV, nt, cl, rows, b, c, ldc, mr, nr, acc, e, col0);                  \
  }                                                                                                 \
  static void micro_kernel_ptrs_##NVV(int kc, const float* const* aps, const float* b, float* c,   \
                                      int ldc, int mr, int nr, int acc) {                           \
    micro_kernel_ptrs_nv(NVV, kc, aps, b, c, ldc, mr, nr, acc);                                    \
  }
INSTANTIATE(1)
INSTANTIATE(2)

/** The kernels of one panel width. */
typedef struct {
  int nrw;  // columns per panel
  mk_fn mk;
  mki_fn mki;
  mkp_fn mkp;
} kernels_t;

static const kernels_t K_NARROW = {VL, micro_kernel_1, micro_kernel_indirect_1, micro_kernel_ptrs_1};
static const kernels_t K_WIDE = {2 * VL, micro_kernel_2, micro_kernel_indirect_2, micro_kernel_ptrs_2};

/** Panels of one vector for at most VL output columns, of two otherwise. */
static const kernels_t* kernels_for(int ncols) { return ncols <= VL ? &K_NARROW : &K_WIDE; }

// ---------------------------------------------------------------------------------------------
// Packers. pack_a writes ceil(mlen/MR) panels of [klen][MR]; pack_b writes ceil(nlen/NR) panels
// of [klen][NR]; both zero-pad the ragged edge.

// w: panel width (MR for A panels; the kernels' nrw for B panels).
typedef void (*pack_fn)(const void* ctx, float* dst, int i0, int ilen, int k0, int klen, int w);

typedef struct {
  const float* p;
  int ld;
  int trans;  // 0: element (i,k) at p[i*ld + k]; 1: at p[k*ld + i]
} matrix_t;

static void pack_a_matrix(const void* vctx, float* dst, int m0, int mlen, int k0, int klen, int w) {
  (void)w;
  const matrix_t* A = (const matrix_t*)vctx;
  for (int i = 0; i < mlen; i += MR) {
    int mr = mlen - i < MR ? mlen - i : MR;
    float* d = dst + (size_t)i * klen;
    if (A->trans) {
      for (int p = 0; p < klen; p++) {
        const float* s = A->p + (size_t)(k0 + p) * A->ld + m0 + i;
        int r = 0;
        for (; r < mr; r++) d[p * MR + r] = s[r];
        for (; r < MR; r++) d[p * MR + r] = 0.f;
      }
    } else {
      int r = 0;
      for (; r < mr; r++) {
        const float* s = A->p + (size_t)(m0 + i + r) * A->ld + k0;
        for (int p = 0; p < klen; p++) d[p * MR + r] = s[p];
      }
      for (; r < MR; r++)
        for (int p = 0; p < klen; p++) d[p * MR + r] = 0.f;
    }
  }
}

static void pack_b_matrix(const void* vctx, float* dst, int n0, int nlen, int k0, int klen, int w) {
  const matrix_t* B = (const matrix_t*)vctx;  // element (k, n): trans=0 at p[k*ld+n], trans=1 at p[n*ld+k]
  for (int j = 0; j < nlen; j += w) {
    int nr = nlen - j < w ? nlen - j : w;
    float* d = dst + (size_t)j * klen;
    if (!B->trans) {
      for (int p = 0; p < klen; p++) {
        const float* s = B->p + (size_t)(k0 + p) * B->ld + n0 + j;
        int c = 0;
        for (; c < nr; c++) d[p * w + c] = s[c];
        for (; c < w; c++) d[p * w + c] = 0.f;
      }
    } else {
      int c = 0;
      for (; c < nr; c++) {
        const float* s = B->p + (size_t)(n0 + j + c) * B->ld + k0;
        for (int p = 0; p < klen; p++) d[p * w + c] = s[p];
      }
      for (; c < w; c++)
        for (int p = 0; p < klen; p++) d[p * w + c] = 0.f;
    }
  }
}

// Convolution geometry (NHWC input, HWIO filter). lh/lw dilate the input itself ("lhs dilation",
// zeros inserted between input pixels), which turns a strided conv's input gradient into a conv.
typedef struct {
  const float* x;
  int n, h, w, c;      // input
  int kh, kw;          // filter
  int oh, ow;          // output
  int sh, sw;          // strides
  int dh, dw;          // filter dilation
  int pt, pl;          // padding top/left (bottom/right implied by the output size)
  int lh, lw;          // input dilation (1 = none)
  // channels one tap reads (0: c). A whole kernel row read as one tap (kw = 1, cspan = kw·c;
  // see kernel_rows_contiguous) keeps c as the pixel stride.
  int cspan;
} conv_t;

// Whether a kernel row's taps read one contiguous run of the input for every output pixel: stride
// and dilations 1 across, and no window crossing the left or right edge. Then the kw·C values of
// a kernel row are one tap of kw·C channels, which fills the register tile also when C is small:
// GradNet's first layer, C = 3, 5×5, has taps of 15 channels instead of 3 (its forward pass went
// 1.9 → 1.0 ms, and a W3g batch of per-example gradients 9.2 → 6.7 ms, at 1 thread).
static int kernel_rows_contiguous(const conv_t* g) {
  return g->sw == 1 && g->dw == 1 && g->lw == 1 && g->pl == 0 && g->ow - 1 + g->kw <= g->w;
}

// Inputs of at most this many channels read whole kernel rows per tap (beyond it a tap's channels
// fill the register tiles well on their own).
#define ROW_TAP_MAX_CHANNELS 32

// Whether g qualifies for whole-row taps once its left and right padding are written out.
static int rows_after_padding(const conv_t* g) {
  return g->c <= ROW_TAP_MAX_CHANNELS && g->kw > 1 && g->sw == 1 && g->dw == 1 && g->lw == 1 &&
         g->pl >= 0 && !kernel_rows_contiguous(g);
}

// A copy of g's input with its left and right padding written out as zeros, in buf: *out is the
// same convolution on the copy (pl = 0, wider rows), whose kernel rows are contiguous. The copy
// (a few hundred KB) costs less than the per-tap padding checks and short taps it removes.
static int pad_columns(const conv_t* g, float** buf, size_t* cap, conv_t* out) {
  const int right = g->ow - 1 + g->kw - g->pl - g->w;
  const int wp = g->w + g->pl + (right > 0 ? right : 0);
  const size_t rowp = (size_t)wp * g->c, row = (size_t)g->w * g->c;
  const long rows = (long)g->n * g->h;
  float* b = grow(buf, cap, (size_t)rows * rowp);
  if (!b) return 0;
  for (long r = 0; r < rows; r++) {
    float* d = b + r * rowp;
    memset(d, 0, (size_t)g->pl * g->c * sizeof(float));
    memcpy(d + (size_t)g->pl * g->c, g->x + r * row, row * sizeof(float));
    memset(d + (size_t)g->pl * g->c + row, 0, (rowp - row - (size_t)g->pl * g->c) * sizeof(float));
  }
  *out = *g;
  out->x = b;
  out->w = wp;
  out->pl = 0;
  return 1;
}
static float* g_padcols;  // the padded copy of a batched convolution's input
static size_t g_padcols_cap;

// Source of input row for logical coordinate li (may be dilated); -1 when it falls on padding or
// on an inserted zero.
static inline int in_coord(int li, int dil, int size) {
  if (li < 0) return -1;
  if (dil == 1) return li < size ? li : -1;
  if (li % dil) return -1;
  li /= dil;
  return li < size ? li : -1;
}

// A = patches: row m = (n, oy, ox), column k = (ky, kx, ci).
static void pack_a_conv(const void* vctx, float* dst, int m0, int mlen, int k0, int klen, int w) {
  (void)w;
  const conv_t* g = (const conv_t*)vctx;
  const int C = g->c;
  for (int i = 0; i < mlen; i += MR) {
    int mr = mlen - i < MR ? mlen - i : MR;
    float* d = dst + (size_t)i * klen;
    for (int r = 0; r < MR; r++) {
      if (r >= mr) {
        for (int p = 0; p < klen; p++) d[p * MR + r] = 0.f;
        continue;
      }
      int m = m0 + i + r;
      int ox = m % g->ow, t = m / g->ow;
      int oy = t % g->oh, nb = t / g->oh;
      int iy0 = oy * g->sh - g->pt, ix0 = ox * g->sw - g->pl;
      const float* xb = g->x + (size_t)nb * g->h * g->w * C;
      int k = k0;
      int ci = k % C, t2 = k / C;
      int kx = t2 % g->kw, ky = t2 / g->kw;
      int p = 0;
      while (p < klen) {
        int run = C - ci;
        if (run > klen - p) run = klen - p;
        int iy = in_coord(iy0 + ky * g->dh, g->lh, g->h);
        int ix = in_coord(ix0 + kx * g->dw, g->lw, g->w);
        float* dp = d + (size_t)p * MR + r;
        if (iy < 0 || ix < 0) {
          for (int q = 0; q < run; q++) dp[q * MR] = 0.f;
        } else {
          const float* s = xb + ((size_t)iy * g->w + ix) * C + ci;
          for (int q = 0; q < run; q++) dp[q * MR] = s[q];
        }
        p += run;
        ci = 0;
        if (++kx == g->kw) { kx = 0; ky++; }
      }
    }
  }
}

// A = patches^T: row = k (ky, kx, ci), depth = m (n, oy, ox). Used for the filter gradient.
static void pack_a_conv_t(const void* vctx, float* dst, int k0, int klen_rows, int m0, int mlen,
                          int w) {
  (void)w;
  const conv_t* g = (const conv_t*)vctx;
  const int C = g->c;
  for (int i = 0; i < klen_rows; i += MR) {
    int rows = klen_rows - i < MR ? klen_rows - i : MR;
    float* d = dst + (size_t)i * mlen;
    // The rows of this panel: runs of consecutive channels at fixed (ky, kx).
    int run_start[MR], run_len[MR], run_ky[MR], run_kx[MR], run_ci[MR], nrun = 0;
    for (int r = 0; r < rows;) {
      int k = k0 + i + r;
      int ci = k % C, t = k / C;
      int len = C - ci;
      if (len > rows - r) len = rows - r;
      run_start[nrun] = r; run_len[nrun] = len;
      run_kx[nrun] = t % g->kw; run_ky[nrun] = t / g->kw; run_ci[nrun] = ci;
      nrun++;
      r += len;
    }
    int m = m0;
    int ox = m % g->ow, t = m / g->ow;
    int oy = t % g->oh, nb = t / g->oh;
    for (int p = 0; p < mlen; p++) {
      float* dp = d + (size_t)p * MR;
      int iy0 = oy * g->sh - g->pt, ix0 = ox * g->sw - g->pl;
      const float* xb = g->x + (size_t)nb * g->h * g->w * C;
      for (int q = 0; q < nrun; q++) {
        int iy = in_coord(iy0 + run_ky[q] * g->dh, g->lh, g->h);
        int ix = in_coord(ix0 + run_kx[q] * g->dw, g->lw, g->w);
        float* o = dp + run_start[q];
        if (iy < 0 || ix < 0) {
          for (int z = 0; z < run_len[q]; z++) o[z] = 0.f;
        } else {
          const float* s = xb + ((size_t)iy * g->w + ix) * C + run_ci[q];
          for (int z = 0; z < run_len[q]; z++) o[z] = s[z];
        }
      }
      for (int r = rows; r < MR; r++) dp[r] = 0.f;
      if (++ox == g->ow) { ox = 0; if (++oy == g->oh) { oy = 0; nb++; } }
    }
  }
}

// ---------------------------------------------------------------------------------------------
static size_t round_up(size_t a, size_t b) { return (a + b - 1) / b * b; }

// K is cut into equal blocks of at most KC, so that no block is a short remainder.
static int balanced_kc(int K) {
  int blocks = (K + KC - 1) / KC;
  return (K + blocks - 1) / blocks;
}

// A packer whose row (A) or column (B) coordinate is shifted: a thread's sub-problem of a GEMM.
typedef struct {
  pack_fn f;
  const void* ctx;
  int shift;
} shifted_t;

static void pack_shifted(const void* vctx, float* dst, int o0, int len, int k0, int klen, int w) {
  const shifted_t* s = (const shifted_t*)vctx;
  s->f(s->ctx, dst, o0 + s->shift, len, k0, klen, w);
}

// GEMM driver. C[M,N] (beta ? += : =) A . B, A given by a packer (M x K), B by a packer (K x N).
// The epilogue (bias, activation) is applied once, with the last K block.

// An A given by pack_a_matrix (maybe a thread's shifted share of one) in the wanted orientation,
// which the kernels can read in place: where its row 0 (trans = 0: rows contiguous) or column 0
// (trans = 1: at each depth step the rows' values are contiguous) starts, and the stride; or 0.
static int a_in_place(pack_fn pa, const void* actx, int trans, const float** a0, int* lda) {
  int shift = 0;
  if (pa == pack_shifted) {
    const shifted_t* s = (const shifted_t*)actx;
    pa = s->f;
    actx = s->ctx;
    shift = s->shift;
  }
  if (pa != pack_a_matrix || ((const matrix_t*)actx)->trans != trans) return 0;
  const matrix_t* A = (const matrix_t*)actx;
  *a0 = A->p + (trans ? (size_t)shift : (size_t)shift * A->ld);
  *lda = A->ld;
  return 1;
}

static void gemm_serial_block(int M, int N, int K, pack_fn pa, const void* actx, pack_fn pb,
                              const void* bctx, float* C, int ldc, int beta, const epilogue_t* epi,
                              float* abuf, float* bbuf) {
  const int kcb = balanced_kc(K);
  const kernels_t* kn = kernels_for(N);
  const int nrw = kn->nrw;
  const float* a0;
  int lda;
  if (N <= NR && !epi && a_in_place(pa, actx, 1, &a0, &lda)) {
    // Aᵀ·B with few columns (a 1×1 convolution's weight gradient Xᵀ·dY, say): at depth step p
    // the MR row values are contiguous (MR channels of one pixel), so the kernel reads them in
    // place — packing A cost about as much as the product (perf: pack_a_matrix 4.6 % of a
    // mini-GUNN step). A tile's last rows may read past A's end: those steps read a copy.
    const float* aps[KC];
    float tail[KC * MR];
    const float* a_end = a0 + (size_t)(K - 1) * lda + M;
    for (int pc = 0; pc < K; pc += kcb) {
      int kc = K - pc < kcb ? K - pc : kcb;
      pb(bctx, bbuf, 0, N, pc, kc, nrw);
      for (int ir = 0; ir < M; ir += MR) {
        int mr = M - ir < MR ? M - ir : MR;
        for (int p = 0; p < kc; p++) {
          const float* ptr = a0 + (size_t)(pc + p) * lda + ir;
          if (ptr + MR > a_end) {
            float* slot = tail + (size_t)p * MR;
            for (int r = 0; r < MR; r++) slot[r] = r < mr ? ptr[r] : 0.f;
            ptr = slot;
          }
          aps[p] = ptr;
        }
        for (int jr = 0; jr < N; jr += nrw) {
          int nr = N - jr < nrw ? N - jr : nrw;
          kn->mkp(kc, aps, bbuf + (size_t)jr * kc, C + (size_t)ir * ldc + jr, ldc, mr, nr,
                  beta || pc > 0);
        }
      }
    }
    return;
  }
  if (N <= NR && a_in_place(pa, actx, 0, &a0, &lda)) {
    // One panel of columns: packing A would cost about as much as the product (perf: 7 % of a
    // mini-GUNN step in pack_a_matrix for its 1×1 convolutions of 6–18 outputs), so the kernel
    // broadcasts from MR row pointers into A, as the convolutions' indirect kernel does.
    const float* rows[MR];
    for (int pc = 0; pc < K; pc += kcb) {
      int kc = K - pc < kcb ? K - pc : kcb;
      int last = pc + kc >= K;
      pb(bctx, bbuf, 0, N, pc, kc, nrw);
      for (int ir = 0; ir < M; ir += MR) {
        int mr = M - ir < MR ? M - ir : MR;
        // rows past the edge repeat the last one: computed, never stored
        for (int r = 0; r < MR; r++) rows[r] = a0 + (size_t)(ir + (r < mr ? r : mr - 1)) * lda + pc;
        for (int jr = 0; jr < N; jr += nrw) {
          int nr = N - jr < nrw ? N - jr : nrw;
          kn->mki(1, kc, rows, bbuf + (size_t)jr * kc, C + (size_t)ir * ldc + jr, ldc, mr, nr,
                  beta || pc > 0, last ? epi : NULL, jr);
        }
      }
    }
    return;
  }
  for (int jc = 0; jc < N; jc += NC) {
    int nc = N - jc < NC ? N - jc : NC;
    for (int pc = 0; pc < K; pc += kcb) {
      int kc = K - pc < kcb ? K - pc : kcb;
      int last = pc + kc >= K;
      pb(bctx, bbuf, jc, nc, pc, kc, nrw);
      for (int ic = 0; ic < M; ic += MC) {
        int mc = M - ic < MC ? M - ic : MC;
        pa(actx, abuf, ic, mc, pc, kc, MR);
        for (int jr = 0; jr < nc; jr += nrw) {
          int nr = nc - jr < nrw ? nc - jr : nrw;
          for (int ir = 0; ir < mc; ir += MR) {
            int mr = mc - ir < MR ? mc - ir : MR;
            kn->mk(kc, abuf + (size_t)ir * kc, bbuf + (size_t)jr * kc,
                         C + (size_t)(ic + ir) * ldc + jc + jr, ldc, mr, nr, beta || pc > 0,
                         last ? epi : NULL, jc + jr);
          }
        }
      }
    }
  }
}


static void gemm(int M, int N, int K, pack_fn pa, const void* actx, pack_fn pb, const void* bctx,
                 float* C, int ldc, int beta, const epilogue_t* epi, int threads) {
  if (M <= 0 || N <= 0) return;
  if (K <= 0) {  // empty reduction: C = beta ? C : 0, then epilogue
    for (int i = 0; i < M; i++)
      for (int j = 0; j < N; j++) {
        float v = beta ? C[(size_t)i * ldc + j] : 0.f;
        if (epi) {
          if (epi->bias) v += epi->bias[j];
          v = apply_act(v, epi->act, epi->alpha);
        }
        C[(size_t)i * ldc + j] = v;
      }
    return;
  }
  const kernels_t* kn = kernels_for(N);
  const int nrw = kn->nrw;
  size_t bsize = round_up(N < NC ? N : NC, nrw) * KC;
  size_t asize = (size_t)MC * KC;
  int mblocks = (M + MC - 1) / MC;
  if (threads <= 1) {
    int tid = thread_id();
    float* abuf = grow(&g_abuf[tid], &g_acap[tid], asize);
    float* bbuf = grow(&g_bloc[tid], &g_blcap[tid], bsize);
    if (abuf && bbuf) gemm_serial_block(M, N, K, pa, actx, pb, bctx, C, ldc, beta, epi, abuf, bbuf);
    return;
  }
  // One parallel region per call, and no barrier inside it: every thread runs the serial blocked
  // GEMM on its own rows (many row blocks) or its own columns (few rows, e.g. a dense layer at
  // batch 64), packing its own panels. A region per K block, as before, cost a wake-up and three
  // barriers each — under OMP_WAIT_POLICY=passive, 2 threads ran the 64×512×2304 product of W1
  // at 1.51 ms against 0.84 ms on one (Wgemm); see the README's "Native kernels and BLAS".
  const int npanels = (N + nrw - 1) / nrw;
  if (mblocks < threads && npanels < threads) threads = npanels > mblocks ? npanels : mblocks;
  // panels of either width fit: the serial block picks its width from its own column count
  bsize = round_up(N < NC ? N : NC, 2 * VL) * KC;
  for (int t = 0; t < threads; t++) {
    if (!grow(&g_abuf[t], &g_acap[t], asize) || !grow(&g_bloc[t], &g_blcap[t], bsize)) return;
  }
  if (mblocks >= threads) {
    // row chunks of whole MC blocks, about four per thread for balance
    int per = mblocks / (threads * 4);
    if (per < 1) per = 1;
    const int chunks = (mblocks + per - 1) / per;
#pragma omp parallel for schedule(dynamic, 1) num_threads(threads)
    for (int c = 0; c < chunks; c++) {
      int tid = thread_id();
      int r0 = c * per * MC, r1 = r0 + per * MC < M ? r0 + per * MC : M;
      shifted_t sa = {pa, actx, r0};
      gemm_serial_block(r1 - r0, N, K, pack_shifted, &sa, pb, bctx, C + (size_t)r0 * ldc, ldc,
                        beta, epi, g_abuf[tid], g_bloc[tid]);
    }
    return;
  }
#pragma omp parallel num_threads(threads)
  {
    int tid = thread_id(), nt = omp_threads();
    int p0 = (int)((long)npanels * tid / nt), p1 = (int)((long)npanels * (tid + 1) / nt);
    int n0 = p0 * nrw, n1 = p1 * nrw < N ? p1 * nrw : N;
    if (n1 > n0) {
      shifted_t sb = {pb, bctx, n0};
      epilogue_t e;
      const epilogue_t* ep = epi;
      if (epi) {
        e = *epi;
        if (e.bias) e.bias += n0;
        ep = &e;
      }
      gemm_serial_block(M, n1 - n0, K, pa, actx, pack_shifted, &sb, C + n0, ldc, beta, ep,
                        g_abuf[tid], g_bloc[tid]);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Convolution by indirect GEMM: out[M, N] = patches(x)[M, K] . W[K, N] with K = taps x channels.
// The K loop is cut into blocks of whole taps (or, for very wide inputs, channel chunks of one
// tap) so that each block's rows of W are contiguous and each A row is a run of channels.

static float* g_zero;
static size_t g_zcap;

static const float* zeros_of(size_t n) {
  if (n > g_zcap) {
    free(g_zero);
    g_zero = (float*)calloc(n + 64, sizeof(float));
    g_zcap = g_zero ? n : 0;
    if (!g_zero) alloc_failed("a zero row", (n + 64) * sizeof(float));
  }
  return g_zero;
}

static const float** g_tab[MAX_THREADS];
static size_t g_tcap[MAX_THREADS];

static void conv_tile_pointers(const conv_t* g, const float* zero, int m0, int t0, int nt, int c0,
                               int M, const float** tab) {
  int base_y[MR], base_x[MR];
  const float* img[MR];
  // the first row's coordinates by division, the others by stepping: with few channels (a 3×3
  // convolution of 12, say) this table cost more than the product it feeds (perf: 7.7 % of a
  // mini-GUNN step with a division per row and a range check per tap and axis)
  int ox = m0 % g->ow, t = m0 / g->ow;
  int oy = t % g->oh, nb = t / g->oh;
  for (int r = 0; r < MR; r++) {
    if (m0 + r >= M) {
      img[r] = NULL;
      base_y[r] = base_x[r] = 0;
      continue;
    }
    base_y[r] = oy * g->sh - g->pt;
    base_x[r] = ox * g->sw - g->pl;
    img[r] = g->x + (size_t)nb * g->h * g->w * g->c + c0;
    if (++ox == g->ow) {
      ox = 0;
      if (++oy == g->oh) { oy = 0; nb++; }
    }
  }
  if (g->lh == 1 && g->lw == 1) {
    // no input dilation: a tap is inside when its row and its column are; rows and columns of
    // the taps are checked once each
    const size_t rowlen = (size_t)g->w * g->c;
    for (int tt = 0; tt < nt; tt++) {
      int tap = t0 + tt, oy_ = (tap / g->kw) * g->dh, ox_ = (tap % g->kw) * g->dw;
      for (int r = 0; r < MR; r++) {
        int iy = base_y[r] + oy_, ix = base_x[r] + ox_;
        tab[tt * MR + r] =
            (img[r] && (unsigned)iy < (unsigned)g->h && (unsigned)ix < (unsigned)g->w)
                ? img[r] + iy * rowlen + (size_t)ix * g->c
                : zero;
      }
    }
    return;
  }
  for (int tt = 0; tt < nt; tt++) {
    int tap = t0 + tt, ky = tap / g->kw, kx = tap % g->kw;
    for (int r = 0; r < MR; r++) {
      const float* p = zero;
      if (img[r]) {
        int iy = in_coord(base_y[r] + ky * g->dh, g->lh, g->h);
        int ix = in_coord(base_x[r] + kx * g->dw, g->lw, g->w);
        if (iy >= 0 && ix >= 0) p = img[r] + ((size_t)iy * g->w + ix) * g->c;
      }
      tab[tt * MR + r] = p;
    }
  }
}

// Few output channels (e.g. the input gradient of a first layer with 1-3 channels): the register
// tile would be mostly padding, so each output value is a dot product over the gathered patch.
static float* g_wt;
static size_t g_wtcap;

static void conv_indirect_narrow(const conv_t* g, const float* wmat, int N, float* out,
                                 const epilogue_t* epi, int threads) {
  const int C = g->c, taps = g->kh * g->kw, M = g->n * g->oh * g->ow, K = taps * C;
  float* wt = grow(&g_wt, &g_wtcap, (size_t)N * K);  // [N][K]
  if (!wt) return;
  for (int k = 0; k < K; k++)
    for (int j = 0; j < N; j++) wt[(size_t)j * K + k] = wmat[(size_t)k * N + j];
#pragma omp parallel for schedule(static) num_threads(threads)
  for (int m = 0; m < M; m++) {
    int ox = m % g->ow, t = m / g->ow;
    int oy = t % g->oh, nb = t / g->oh;
    int y0 = oy * g->sh - g->pt, x0 = ox * g->sw - g->pl;
    const float* img = g->x + (size_t)nb * g->h * g->w * C;
    for (int j = 0; j < N; j++) {
      vf acc = (vf){0};
      float tail = 0.f;
      const float* wj = wt + (size_t)j * K;
      for (int tap = 0; tap < taps; tap++) {
        int ky = tap / g->kw, kx = tap % g->kw;
        int iy = in_coord(y0 + ky * g->dh, g->lh, g->h);
        int ix = in_coord(x0 + kx * g->dw, g->lw, g->w);
        if (iy < 0 || ix < 0) continue;
        const float* p = img + ((size_t)iy * g->w + ix) * C;
        const float* wk = wj + (size_t)tap * C;
        int c = 0;
        for (; c + VL <= C; c += VL) {
          vf a, b;
          memcpy(&a, p + c, sizeof(vf));
          memcpy(&b, wk + c, sizeof(vf));
          acc += a * b;
        }
        for (; c < C; c++) tail += p[c] * wk[c];
      }
      float v = tail;
      for (int l = 0; l < VL; l++) v += acc[l];
      if (epi) {
        if (epi->bias) v += epi->bias[j];
        v = apply_act(v, epi->act, epi->alpha);
      }
      out[(size_t)m * N + j] = v;
    }
  }
}

static void conv_indirect(const conv_t* g, const float* wmat, int N, float* out,
                          const epilogue_t* epi, int threads) {
  if (g->n * g->oh * g->ow <= 0 || N <= 0) return;
  if (N <= NARROW_MAX_OUTPUTS) {
    conv_indirect_narrow(g, wmat, N, out, epi, threads);
    return;
  }
  // few channels: a whole kernel row per tap (the filter's K order is the same), on a copy with
  // the padding written out where the rows cross an edge
  conv_t rows = *g;
  if (rows_after_padding(g) && !pad_columns(g, &g_padcols, &g_padcols_cap, &rows)) return;
  if (rows.c <= ROW_TAP_MAX_CHANNELS && kernel_rows_contiguous(&rows)) {
    rows.cspan = rows.kw * rows.c;
    rows.kw = 1;
    g = &rows;
  }
  const int C = g->cspan ? g->cspan : g->c, taps = g->kh * g->kw, M = g->n * g->oh * g->ow;
  const float* zero = zeros_of((size_t)C);
  int tpb, cch;  // taps per block, channels per block
  if (C <= KC) {
    cch = C;
    tpb = KC / C;
    int nb = (taps + tpb - 1) / tpb;
    tpb = (taps + nb - 1) / nb;
  } else {
    tpb = 1;
    int nb = (C + KC - 1) / KC;
    cch = (C + nb - 1) / nb;
  }
  const int kmax = tpb * cch;
  const kernels_t* kn = kernels_for(N);
  const int nrw = kn->nrw;
  matrix_t B = {wmat, N, 0};
  size_t bsize = round_up(N < NC ? N : NC, nrw) * kmax;
  int mblocks = (M + MC - 1) / MC;
  size_t tsize = (size_t)MC * tpb;
  for (int t = 0; t < threads && t < MAX_THREADS; t++) {
    if (tsize > g_tcap[t]) {
      free(g_tab[t]);
      g_tab[t] = (const float**)malloc(tsize * sizeof(float*));
      g_tcap[t] = g_tab[t] ? tsize : 0;
      if (!g_tab[t]) {
        alloc_failed("convolution row tables", tsize * sizeof(float*));
        return;
      }
    }
  }
  if (!zero) return;
  if (mblocks >= threads) {
    // One parallel region, no barrier: each thread takes chunks of whole row blocks (about four
    // per thread) and packs its own weight panels — a region per K block cost a wake-up and two
    // barriers each (see gemm()).
    for (int t = 0; t < threads; t++)
      if (!grow(&g_bloc[t], &g_blcap[t], bsize)) return;
    int per = mblocks / (threads * 4);
    if (per < 1) per = 1;
    const int chunks = (mblocks + per - 1) / per;
#pragma omp parallel for schedule(dynamic, 1) num_threads(threads)
    for (int ch = 0; ch < chunks; ch++) {
      int tid = thread_id();
      float* bb = g_bloc[tid];
      const float** tab = g_tab[tid];
      int r0 = ch * per * MC, r1 = r0 + per * MC < M ? r0 + per * MC : M;
      for (int jc = 0; jc < N; jc += NC) {
        int nc = N - jc < NC ? N - jc : NC;
        for (int t0 = 0; t0 < taps; t0 += tpb) {
          int nt = taps - t0 < tpb ? taps - t0 : tpb;
          for (int c0 = 0; c0 < C; c0 += cch) {
            int clen = C - c0 < cch ? C - c0 : cch;
            int kc = nt * clen, k0 = t0 * C + c0;
            int first = t0 == 0 && c0 == 0;
            int last = t0 + nt >= taps && c0 + clen >= C;
            pack_b_matrix(&B, bb, jc, nc, k0, kc, nrw);
            for (int ir = r0; ir < r1; ir += MR) {
              int mr = r1 - ir < MR ? r1 - ir : MR;
              conv_tile_pointers(g, zero, ir, t0, nt, c0, M, tab);
              for (int jr = 0; jr < nc; jr += nrw) {
                int nr = nc - jr < nrw ? nc - jr : nrw;
                kn->mki(nt, clen, tab, bb + (size_t)jr * kc, out + (size_t)ir * N + jc + jr, N, mr,
                        nr, !first, last ? epi : NULL, jc + jr);
              }
            }
          }
        }
      }
    }
    return;
  }
  float* bbuf = grow(&g_bbuf, &g_bcap, bsize);
  if (!bbuf) return;
  for (int jc = 0; jc < N; jc += NC) {
    int nc = N - jc < NC ? N - jc : NC;
    int npanels = (nc + nrw - 1) / nrw;
    int jgroups = mblocks >= threads ? 1 : (npanels < threads ? npanels : threads);
    int items = mblocks * jgroups;
    for (int t0 = 0; t0 < taps; t0 += tpb) {
      int nt = taps - t0 < tpb ? taps - t0 : tpb;
      for (int c0 = 0; c0 < C; c0 += cch) {
        int clen = C - c0 < cch ? C - c0 : cch;
        int kc = nt * clen;
        int k0 = t0 * C + c0;
        int first = t0 == 0 && c0 == 0;
        int last = t0 + nt >= taps && c0 + clen >= C;
        const epilogue_t* e = last ? epi : NULL;
#pragma omp parallel num_threads(threads)
        {
          int tid = thread_id();
#pragma omp for schedule(static)
          for (int j = 0; j < npanels; j++) {
            int n0 = j * nrw;
            pack_b_matrix(&B, bbuf + (size_t)n0 * kc, jc + n0, nc - n0 < nrw ? nc - n0 : nrw, k0, kc, nrw);
          }
          const float** tab = g_tab[tid];
#pragma omp for schedule(dynamic, 1)
          for (int it = 0; it < items; it++) {
            int ib = it / jgroups, jg = it % jgroups;
            int p0 = (int)((long)npanels * jg / jgroups), p1 = (int)((long)npanels * (jg + 1) / jgroups);
            int ic = ib * MC;
            int mc = M - ic < MC ? M - ic : MC;
            for (int ir = 0; ir < mc; ir += MR) {
              int mr = mc - ir < MR ? mc - ir : MR;
              conv_tile_pointers(g, zero, ic + ir, t0, nt, c0, M, tab);
              for (int p = p0; p < p1; p++) {
                int jr = p * nrw;
                int nr = nc - jr < nrw ? nc - jr : nrw;
                kn->mki(nt, clen, tab, bbuf + (size_t)jr * kc,
                                      out + (size_t)(ic + ir) * N + jc + jr, N, mr, nr, !first, e,
                                      jc + jr);
              }
            }
          }
        }
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Public entry points (all pointers are float32, row-major / NHWC).

// c[batch][M][N] = op(a) . op(b) (+ bias, activation). aStride/bStride are 0 to broadcast.
static float dot_f(const float* x, const float* y, int n) {
  vf acc = (vf){0};
  int k = 0;
  for (; k + VL <= n; k += VL) {
    vf a, b;
    memcpy(&a, x + k, sizeof(vf));
    memcpy(&b, y + k, sizeof(vf));
    acc += a * b;
  }
  float s = 0.f;
  for (int l = 0; l < VL; l++) s += acc[l];
  for (; k < n; k++) s += x[k] * y[k];
  return s;
}

static float* g_thin;
static size_t g_thincap;

// C = op(A)·op(B) for thin shapes (M or N at most 4): dot products of contiguous rows, or row
// updates (axpy) along the long dimension — whichever reads memory contiguously. Copies an
// operand transposed when neither form can.
static void thin_matmul(const float* a, const float* b, float* c, int M, int N, int K, int transA,
                        int transB, const epilogue_t* epi) {
  if (N <= 4 && transA) {
    // Cᵀ[j][·] += B(k, j) · A(·, k), A(·, k) = a[k*M ...] contiguous
    float* ct = grow(&g_thin, &g_thincap, (size_t)N * M);
    if (!ct) return;
    memset(ct, 0, (size_t)N * M * sizeof(float));
    for (int k = 0; k < K; k++) {
      const float* ak = a + (size_t)k * M;
      for (int jj = 0; jj < N; jj++) {
        const float bkj = transB ? b[(size_t)jj * K + k] : b[(size_t)k * N + jj];
        float* cj = ct + (size_t)jj * M;
        for (int ii = 0; ii < M; ii++) cj[ii] += bkj * ak[ii];
      }
    }
    for (int ii = 0; ii < M; ii++)
      for (int jj = 0; jj < N; jj++) c[(size_t)ii * N + jj] = ct[(size_t)jj * M + ii];
  } else if (N <= 4 || transB) {
    // dot products: rows of A (copied when transposed) with columns of B (copied unless transB)
    const float* arows = a;
    const float* bcols = b;
    size_t need = (transA ? (size_t)M * K : 0) + (transB ? 0 : (size_t)N * K);
    float* tmp = need ? grow(&g_thin, &g_thincap, need) : NULL;
    if (need && !tmp) return;
    if (transA) {
      for (int k = 0; k < K; k++)
        for (int ii = 0; ii < M; ii++) tmp[(size_t)ii * K + k] = a[(size_t)k * M + ii];
      arows = tmp;
    }
    if (!transB) {
      float* bt = tmp + (transA ? (size_t)M * K : 0);
      for (int k = 0; k < K; k++)
        for (int jj = 0; jj < N; jj++) bt[(size_t)jj * K + k] = b[(size_t)k * N + jj];
      bcols = bt;
    }
    for (int ii = 0; ii < M; ii++)
      for (int jj = 0; jj < N; jj++)
        c[(size_t)ii * N + jj] = dot_f(arows + (size_t)ii * K, bcols + (size_t)jj * K, K);
  } else {
    // M <= 4, B rows contiguous: C[i][·] += A(i, k) · B[k][·]
    memset(c, 0, (size_t)M * N * sizeof(float));
    for (int k = 0; k < K; k++) {
      const float* bk = b + (size_t)k * N;
      for (int ii = 0; ii < M; ii++) {
        const float av = transA ? a[(size_t)k * M + ii] : a[(size_t)ii * K + k];
        float* cr = c + (size_t)ii * N;
        for (int jj = 0; jj < N; jj++) cr[jj] += av * bk[jj];
      }
    }
  }
  if (epi) {
    for (int ii = 0; ii < M; ii++)
      for (int jj = 0; jj < N; jj++) {
        float v = c[(size_t)ii * N + jj];
        if (epi->bias) v += epi->bias[jj];
        c[(size_t)ii * N + jj] = apply_act(v, epi->act, epi->alpha);
      }
  }
}

void gl_matmul(const float* a, const float* b, float* c, int batch, int M, int N, int K,
               int transA, int transB, int aStride, int bStride, const float* bias, int act,
               float alpha) {
  SERIALIZED;
  epilogue_t e = {bias, act, alpha};
  const epilogue_t* epi = (bias || act) ? &e : NULL;
  double work = (double)M * N * K;
  if (batch > 1 && g_threads > 1 && work < 4e6) {
#pragma omp parallel for schedule(dynamic, 1) num_threads(g_threads)
    for (int i = 0; i < batch; i++) {
      matrix_t A = {a + (size_t)i * aStride, transA ? M : K, transA};
      matrix_t B = {b + (size_t)i * bStride, transB ? K : N, transB};
      gemm(M, N, K, pack_a_matrix, &A, pack_b_matrix, &B, c + (size_t)i * M * N, N, 0, epi, 1);
    }
    return;
  }
  // Thin products (a few rows or columns, e.g. a 2-D layer over a full batch) are cheaper as plain
  // loops than packed, and too small for threads to pay off.
  const int thin = (M <= 4 || N <= 4) && work < 4e6;
  for (int i = 0; i < batch; i++) {
    const float* ai = a + (size_t)i * aStride;
    const float* bi = b + (size_t)i * bStride;
    float* ci = c + (size_t)i * M * N;
    if (thin) {
      thin_matmul(ai, bi, ci, M, N, K, transA, transB, epi);
      continue;
    }
    matrix_t A = {ai, transA ? M : K, transA};
    matrix_t B = {bi, transB ? K : N, transB};
    gemm(M, N, K, pack_a_matrix, &A, pack_b_matrix, &B, ci, N, 0, epi, work < 1e6 ? 1 : g_threads);
  }
}

// ---------------------------------------------------------------------------------------------
// 3×3 convolutions, stride 1, by Winograd F(2×2, 3×3): each 2×2 block of outputs ("tile") is
// Aᵀ[(G·g·Gᵀ) ⊙ (Bᵀ·d·B)]A of its 4×4 input patch d, so the products run in a transformed space
// of 16 points where each costs one multiply-add per (input, output) channel pair: 16 against the
// direct method's 36 per tile, 2.25× fewer. The 16 products are GEMMs [tiles × ci]·[ci × co], fed
// by the same micro-kernels as the rest of the library. The input gradient is the same transform
// on dy with the flipped filter; the filter gradient is the adjoint of the forward one,
// dg = Gᵀ[Σ_tiles (A·dy·Aᵀ) ⊙ (Bᵀ·d·B)]G, summed over fixed parts of the tiles (see
// REDUCE_PARTS). Direct convolution reached 98–198 GFLOP/s on a 64-channel 3×3 convolution here,
// while 2× PyTorch on W4 needs ≥ 220 (README, "W4 against PyTorch").

#define WT 16                // points of the transformed tile
#define WINO_TILES (MR * 8)  // tiles per chunk (a chunk's transformed input stays in L2)
// floats between consecutive tiles of a chunk's transformed data: 16 points of c channels plus a
// vector, so that the tiles a micro-kernel reads together do not all fall in one cache set
// (at 64 channels the plain stride is 4 KiB: the 64 → 16 forward ran 1.5× slower)
static size_t wino_ld(int c) { return (size_t)WT * c + VL; }

// gl_set_winograd(0) forces direct convolution (tests, benchmarks), for the calling thread only:
// `deno test --parallel` runs test modules on threads of one process, and one module's switch
// must not change the algorithm (and so the bits) under another's feet (the thread-count test
// saw different filter gradients at 2 threads while the Winograd tests ran beside it).
static __thread int g_winograd = 1;
// Passes run by Winograd, counted per calling thread (tests prove the path ran; `deno test
// --parallel` runs other test modules' convolutions on other threads of the same process).
static __thread double g_wino_calls;

int gl_set_winograd(int on) {
  int was = g_winograd;
  g_winograd = on != 0;
  return was;
}

double gl_winograd_calls(void) { return g_wino_calls; }

// Channels at least this many on both sides: with fewer the transforms cost about what the
// multiplications save (batch 64 at 16×16: 12 → 12 ran equal, 16 → 16 1.3× faster).
#define WINO_MIN_CHANNELS 16

static int wino_ok(int kh, int kw, int sh, int sw, int dh, int dw, int ci, int co) {
  return g_winograd && kh == 3 && kw == 3 && sh == 1 && sw == 1 && dh == 1 && dw == 1 &&
         ci >= WINO_MIN_CHANNELS && co >= WINO_MIN_CHANNELS;
}

// 5×5 convolutions, stride 1, by F(2×2, 5×5): 6×6 input patches, 36 points against the direct
// method's 100 multiply-adds per tile (2.8× fewer). The transforms use the points 0, ±1, ±2, ∞
// (those of F(4, 3)); Bᵀ, G and Aᵀ below follow from them (Toom–Cook). Forward passes and input
// gradients only (the filter gradient stays direct). GradNet's base network cnn_cifar(h) has a
// 5×5 h → h convolution on 11×11 maps: at h = 64 its forward pass was a third of a W3g batch.
// Channels at least this many on both sides (batch 64 on 11×11, 1 thread: 64 → 64 ran 6.7 →
// 4.7 ms, 48 → 48 5.1 → 4.0, 32 → 32 1.77 → 1.68, 16 → 16 0.54 → 0.75).
#define WINO5_MIN_CHANNELS 48

static int wino5_ok(int kh, int kw, int sh, int sw, int dh, int dw, int ci, int co) {
  return g_winograd && kh == 5 && kw == 5 && sh == 1 && sw == 1 && dh == 1 && dw == 1 &&
         ci >= WINO5_MIN_CHANNELS && co >= WINO5_MIN_CHANNELS;
}
#define WT5 36  // points of an F(2×2, 5×5) tile

static float* g_wv[MAX_THREADS];  // a chunk's transformed input [16][tiles][ci]
static size_t g_wvcap[MAX_THREADS];
static float* g_wm[MAX_THREADS];  // its transformed outputs [16][tiles][co] (or A·dy·Aᵀ, packed)
static size_t g_wmcap[MAX_THREADS];
static float* g_wu;               // the transformed filter, packed B panels per point
static size_t g_wucap;

// U = G·g·Gᵀ for every (ci, co), written as B panels: point ξ, panel jp: [ci][nrw]. f is
// [3][3][ci][co] (TF.js HWIO).
static void wino_filter(const float* f, int ci, int co, int nrw, float* U) {
  const int np = (co + nrw - 1) / nrw;
  const size_t per_point = (size_t)np * ci * nrw;
  memset(U, 0, WT * per_point * sizeof(float));
  for (int i = 0; i < ci; i++)
    for (int o = 0; o < co; o++) {
      float g[3][3], t[4][3], u[4][4];
      for (int y = 0; y < 3; y++)
        for (int x = 0; x < 3; x++) g[y][x] = f[(((size_t)y * 3 + x) * ci + i) * co + o];
      for (int x = 0; x < 3; x++) {
        t[0][x] = g[0][x];
        t[1][x] = 0.5f * (g[0][x] + g[1][x] + g[2][x]);
        t[2][x] = 0.5f * (g[0][x] - g[1][x] + g[2][x]);
        t[3][x] = g[2][x];
      }
      for (int y = 0; y < 4; y++) {
        u[y][0] = t[y][0];
        u[y][1] = 0.5f * (t[y][0] + t[y][1] + t[y][2]);
        u[y][2] = 0.5f * (t[y][0] - t[y][1] + t[y][2]);
        u[y][3] = t[y][2];
      }
      const int jp = o / nrw, jj = o % nrw;
      for (int p = 0; p < WT; p++)
        U[p * per_point + ((size_t)jp * ci + i) * nrw + jj] = u[p / 4][p % 4];
    }
}

// G·a for the 5 values of a filter column or row (G's rows: a0/4, −Σa/6, −Σ(−1)ᵏaₖ/6,
// Σ2ᵏaₖ/24, Σ(−2)ᵏaₖ/24, a4), VL output channels at once.
ALWAYS_INLINE void wino5_g(const vf a[5], vf t[6]) {
  const vf even = a[0] + a[2] + a[4], odd = a[1] + a[3];
  const vf even2 = a[0] + 4.f * a[2] + 16.f * a[4], odd2 = 2.f * a[1] + 8.f * a[3];
  t[0] = a[0] * 0.25f;
  t[1] = (even + odd) * (-1.f / 6);
  t[2] = (even - odd) * (-1.f / 6);
  t[3] = (even2 + odd2) * (1.f / 24);
  t[4] = (even2 - odd2) * (1.f / 24);
  t[5] = a[4];
}

// U = G·g·Gᵀ (6×5 · 5×5 · 5×6) for every (ci, co), as wino_filter's panels of 36 points; f is
// [5][5][ci][co]; VL output channels at once (panels hold whole vectors: nrw is VL or 2·VL).
static void wino5_filter(const float* f, int ci, int co, int nrw, float* U) {
  const int np = (co + nrw - 1) / nrw;
  const size_t per_point = (size_t)np * ci * nrw;
  memset(U, 0, WT5 * per_point * sizeof(float));
  for (int i = 0; i < ci; i++)
    for (int o = 0; o < co; o += VL) {
      const int lanes = co - o < VL ? co - o : VL;
      vf g[5][5], t[6][5], u[6][6];
      for (int y = 0; y < 5; y++)
        for (int x = 0; x < 5; x++) {
          const float* src = f + (((size_t)y * 5 + x) * ci + i) * co + o;
          g[y][x] = (vf){0};
          if (lanes == VL)
            memcpy(&g[y][x], src, sizeof(vf));
          else
            for (int l = 0; l < lanes; l++) g[y][x][l] = src[l];
        }
      for (int x = 0; x < 5; x++) {  // t = G·g, column x
        vf col[5], r[6];
        for (int y = 0; y < 5; y++) col[y] = g[y][x];
        wino5_g(col, r);
        for (int y = 0; y < 6; y++) t[y][x] = r[y];
      }
      for (int y = 0; y < 6; y++) wino5_g(t[y], u[y]);  // u = t·Gᵀ, row y
      const int jp = o / nrw, jj = o % nrw;
      for (int p = 0; p < WT5; p++) {
        float* dst = U + p * per_point + ((size_t)jp * ci + i) * nrw + jj;
        for (int l = 0; l < lanes; l++) dst[l] = u[p / 6][p % 6][l];
      }
    }
}

// The 16 input pointers of tile `t` (pixel rows, or `zero` outside the image).
// Tile t's image, tile row and tile column.
static void wino_tile(long t, int tiles_h, int tiles_w, long* nb, int* ty, int* tx) {
  *tx = (int)(t % tiles_w);
  const long r = t / tiles_w;
  *ty = (int)(r % tiles_h);
  *nb = r / tiles_h;
}

// The 2×2 output pixels of tile t in an [n, oh, ow, c] tensor, `outside` where they do not exist.
static void wino_out_pixels(float* y, int oh, int ow, int c, int tiles_h, int tiles_w, long t,
                            float* outside, float* px[2][2]) {
  long nb;
  int ty, tx;
  wino_tile(t, tiles_h, tiles_w, &nb, &ty, &tx);
  for (int i = 0; i < 2; i++)
    for (int j = 0; j < 2; j++) {
      const int oy = 2 * ty + i, ox = 2 * tx + j;
      px[i][j] = (oy < oh && ox < ow) ? y + (((size_t)nb * oh + oy) * ow + ox) * c : outside;
    }
}

// The size × size input pointers of tile t's patch (4 for F(2×2, 3×3), 6 for F(2×2, 5×5)).
static void wino_patch(const float* x, int h, int w, int c, int tiles_h, int tiles_w, int pt,
                       int pl, long t, const float* zero, int size, const float** p) {
  long nb;
  int ty, tx;
  wino_tile(t, tiles_h, tiles_w, &nb, &ty, &tx);
  const float* img = x + (size_t)nb * h * w * c;
  const int y0 = 2 * ty - pt, x0 = 2 * tx - pl;
  for (int i = 0; i < size; i++)
    for (int j = 0; j < size; j++) {
      const int iy = y0 + i, ix = x0 + j;
      p[i * size + j] = ((unsigned)iy < (unsigned)h && (unsigned)ix < (unsigned)w)
                            ? img + ((size_t)iy * w + ix) * c
                            : zero;
    }
}

// Bᵀ·d·B on VL channels at once (lanes are channels)
ALWAYS_INLINE void wino_bt_d_b(const vf d[4][4], vf v[16]) {
  vf s[4][4];
  for (int j = 0; j < 4; j++) {
    s[0][j] = d[0][j] - d[2][j];
    s[1][j] = d[1][j] + d[2][j];
    s[2][j] = d[2][j] - d[1][j];
    s[3][j] = d[1][j] - d[3][j];
  }
  for (int i = 0; i < 4; i++) {
    v[i * 4 + 0] = s[i][0] - s[i][2];
    v[i * 4 + 1] = s[i][1] + s[i][2];
    v[i * 4 + 2] = s[i][2] - s[i][1];
    v[i * 4 + 3] = s[i][1] - s[i][3];
  }
}

// Bᵀ·d for column j of a 4×4 patch (rows p[j], p[4 + j], …), VL channels from ch
ALWAYS_INLINE void wino_bt_column(const float* const* p, int j, int ch, vf s[4]) {
  vf d0, d1, d2, d3;
  memcpy(&d0, p[j] + ch, sizeof(vf));
  memcpy(&d1, p[4 + j] + ch, sizeof(vf));
  memcpy(&d2, p[8 + j] + ch, sizeof(vf));
  memcpy(&d3, p[12 + j] + ch, sizeof(vf));
  s[0] = d0 - d2;
  s[1] = d1 + d2;
  s[2] = d2 - d1;
  s[3] = d1 - d3;
}

// V[k][ξ][·] = (Bᵀ·d·B)[ξ] for the tiles t0 .. t0+nt−1 (k-th of the chunk): each tile's 16·c
// values are contiguous (one store stream; with a stream per point the transform ran at half the
// speed). Written with vector types: the compiler did not vectorise loads through 16 pointers.
// Bᵀ·d first combines the rows of each patch column, and a tile's first two columns are the
// previous tile's last two when both lie in one row of tiles: those are kept, so most tiles load
// and combine only two columns (the 64-channel transform ran 0.38 ms for a W4 batch before).
static void wino_input(const float* x, int h, int w, int c, int tiles_h, int tiles_w, int pt,
                       int pl, long t0, int nt, const float* zero, float* V) {
  const size_t pstride = (size_t)c, ld = wino_ld(c);
  const float* P[WINO_TILES][16];
  for (int k = 0; k < nt; k++)
    wino_patch(x, h, w, c, tiles_h, tiles_w, pt, pl, t0 + k, zero, 4, P[k]);
  int ch = 0;
  for (; ch + VL <= c; ch += VL) {
    vf s0[4], s1[4], s2[4], s3[4];  // Bᵀ·d of the patch's columns 0 … 3 (registers, not memory)
    for (int k = 0; k < nt; k++) {
      const float* const* p = P[k];
      if (k > 0 && (t0 + k) % tiles_w != 0) {  // the right neighbour of tile k − 1
        for (int i = 0; i < 4; i++) {
          s0[i] = s2[i];
          s1[i] = s3[i];
        }
      } else {
        wino_bt_column(p, 0, ch, s0);
        wino_bt_column(p, 1, ch, s1);
      }
      wino_bt_column(p, 2, ch, s2);
      wino_bt_column(p, 3, ch, s3);
      float* v = V + (size_t)k * ld + ch;
      for (int i = 0; i < 4; i++) {
        const vf r[4] = {s0[i] - s2[i], s1[i] + s2[i], s2[i] - s1[i], s1[i] - s3[i]};
        for (int q = 0; q < 4; q++) memcpy(v + (i * 4 + q) * pstride, &r[q], sizeof(vf));
      }
    }
  }
  for (; ch < c; ch++) {  // the last channels, one lane each
    for (int k = 0; k < nt; k++) {
      vf d[4][4], r[16];
      for (int q = 0; q < 16; q++) d[q / 4][q % 4] = (vf){0} + P[k][q][ch];
      wino_bt_d_b(d, r);
      float* v = V + (size_t)k * ld;
      for (int q = 0; q < 16; q++) v[q * pstride + ch] = r[q][0];
    }
  }
}

// Bᵀ·d for 6 values (F(2×2, 5×5)): Bᵀ's rows are (4, 0, −5, 0, 1, 0), (0, −4, −4, 1, 1, 0),
// (0, 4, −4, −1, 1, 0), (0, −2, −1, 2, 1, 0), (0, 2, −1, −2, 1, 0), (0, 4, 0, −5, 0, 1).
ALWAYS_INLINE void wino5_bt(const vf d[6], vf s[6]) {
  const vf a = d[4] - 4.f * d[2], b = d[3] - 4.f * d[1];  // shared by rows 1 and 2
  const vf e = d[4] - d[2], f = 2.f * (d[3] - d[1]);      // shared by rows 3 and 4
  s[0] = 4.f * d[0] - 5.f * d[2] + d[4];
  s[1] = a + b;
  s[2] = a - b;
  s[3] = e + f;
  s[4] = e - f;
  s[5] = 4.f * d[1] - 5.f * d[3] + d[5];
}

// V[k][ξ][·] = (Bᵀ·d·B)[ξ] for the tiles t0 .. t0+nt−1 of F(2×2, 5×5), as wino_input (without
// its reuse of columns between neighbouring tiles).
static void wino5_input(const float* x, int h, int w, int c, int tiles_h, int tiles_w, int pt,
                        int pl, long t0, int nt, const float* zero, float* V) {
  const size_t ld = (size_t)WT5 * c + VL;
  const float* P[WT5];
  for (int k = 0; k < nt; k++) {
    wino_patch(x, h, w, c, tiles_h, tiles_w, pt, pl, t0 + k, zero, 6, P);
    float* v = V + (size_t)k * ld;
    for (int ch = 0; ch < c; ch += VL) {
      const int lanes = c - ch < VL ? c - ch : VL;
      vf col[6][6];  // Bᵀ·d, column by column
      for (int j = 0; j < 6; j++) {
        vf d[6];
        for (int i = 0; i < 6; i++) {
          if (lanes == VL) {
            memcpy(&d[i], P[i * 6 + j] + ch, sizeof(vf));
          } else {
            d[i] = (vf){0};
            for (int l = 0; l < lanes; l++) d[i][l] = P[i * 6 + j][ch + l];
          }
        }
        wino5_bt(d, col[j]);
      }
      for (int i = 0; i < 6; i++) {  // (Bᵀ·d)·B, row by row
        vf row[6], r[6];
        for (int j = 0; j < 6; j++) row[j] = col[j][i];
        wino5_bt(row, r);
        for (int q = 0; q < 6; q++) {
          if (lanes == VL) {
            memcpy(v + (size_t)(i * 6 + q) * c + ch, &r[q], sizeof(vf));
          } else {
            for (int l = 0; l < lanes; l++) v[(size_t)(i * 6 + q) * c + ch + l] = r[q][l];
          }
        }
      }
    }
  }
}

// Products with at most VL output columns, 2·MR rows at once: with one accumulator per row, MR
// rows are too few chains to hide the multiply-add latency on this core (a 64 → 16 3×3
// convolution ran at ~130 GFLOP/s on MR rows). Row r's value at depth q is rows[r][q] (rows=1)
// or rows[q][r] (rows=0, a pointer per depth step to 2·MR consecutive values).
static void micro_kernel_tall(int kc, const float* const* ptrs, int by_row, const float* restrict b,
                              float* restrict c, int ldc, int mr, int nr, int accumulate) {
  enum { R = 2 * MR };
  vf acc[R];
  for (int r = 0; r < R; r++) acc[r] = (vf){0};
  if (by_row) {
    const float* rp[R];
    for (int r = 0; r < R; r++) rp[r] = ptrs[r];
    for (int q = 0; q < kc; q++) {
      const vf b0 = *(const vf*)(b + (size_t)q * VL);
#pragma GCC unroll 24
      for (int r = 0; r < R; r++) acc[r] += rp[r][q] * b0;
    }
  } else {
    for (int q = 0; q < kc; q++) {
      const vf b0 = *(const vf*)(b + (size_t)q * VL);
      const float* ap = ptrs[q];
#pragma GCC unroll 24
      for (int r = 0; r < R; r++) acc[r] += ap[r] * b0;
    }
  }
  for (int r = 0; r < mr; r++) {
    float* cr = c + (size_t)r * ldc;
    if (nr == VL) {
      vf cur = acc[r];
      if (accumulate) {
        vf old;
        memcpy(&old, cr, sizeof(vf));
        cur += old;
      }
      memcpy(cr, &cur, sizeof(vf));
    } else {
      for (int j = 0; j < nr; j++) cr[j] = accumulate ? cr[j] + acc[r][j] : acc[r][j];
    }
  }
}

// Aᵀ·m·A on VL channels at once: the 2×2 outputs y00, y01, y10, y11
ALWAYS_INLINE void wino_at_m_a(const vf q[16], vf o[4]) {
  vf s0[4], s1[4];
  for (int j = 0; j < 4; j++) {
    s0[j] = q[j] + q[4 + j] + q[8 + j];
    s1[j] = q[4 + j] - q[8 + j] - q[12 + j];
  }
  o[0] = s0[0] + s0[1] + s0[2];
  o[1] = s0[1] - s0[2] - s0[3];
  o[2] = s1[0] + s1[1] + s1[2];
  o[3] = s1[1] - s1[2] - s1[3];
}

// Aᵀ·m·A of F(2×2, 5×5): Aᵀ = [(1, 1, 1, 1, 1, 0), (0, 1, −1, 2, −2, 1)]
ALWAYS_INLINE void wino5_at_m_a(const vf q[36], vf o[4]) {
  vf s0[6], s1[6];
  for (int j = 0; j < 6; j++) {
    const vf a = q[6 + j] + q[12 + j], b = q[18 + j] + q[24 + j];
    const vf e = q[6 + j] - q[12 + j], f = q[18 + j] - q[24 + j];
    s0[j] = q[j] + a + b;
    s1[j] = e + 2.f * f + q[30 + j];
  }
  o[0] = s0[0] + (s0[1] + s0[2]) + (s0[3] + s0[4]);
  o[1] = (s0[1] - s0[2]) + 2.f * (s0[3] - s0[4]) + s0[5];
  o[2] = s1[0] + (s1[1] + s1[2]) + (s1[3] + s1[4]);
  o[3] = (s1[1] - s1[2]) + 2.f * (s1[3] - s1[4]) + s1[5];
}

// Forward: y [n, oh, ow, co] from x [n, h, w, ci] (3×3, stride 1, padding pt/pl), U from
// wino_filter, then the epilogue; with `accumulate` (and no epilogue) y += the convolution.
// r = 5: the same for a 5×5 filter by F(2×2, 5×5) (U from wino5_filter).
// Aᵀ·m·A for `lanes` channels from ch on of one tile's transformed outputs m, into the tile's
// pixels that exist (out[·][·] not NULL).
ALWAYS_INLINE void wino_out(const float* m, int co, int ch, int lanes, int r, float* out[2][2],
                            int accumulate, const epilogue_t* epi) {
  vf q[WT5], o[4];
  for (int p = 0; p < (r == 5 ? WT5 : WT); p++) q[p] = load_lanes(m + (size_t)p * co + ch, lanes);
  if (r == 5)
    wino5_at_m_a(q, o);
  else
    wino_at_m_a(q, o);
  for (int i = 0; i < 4; i++)
    if (out[i / 2][i % 2]) store_output(out[i / 2][i % 2] + ch, o[i], lanes, accumulate, epi, ch);
}

static void wino_conv(const float* x, int n, int h, int w, int ci, int pt, int pl, int oh, int ow,
                      const float* U, int co, float* y, const epilogue_t* epi, int accumulate,
                      int r) {
  const int points = r == 5 ? WT5 : WT;
  const kernels_t* kn = kernels_for(co);
  const int nrw = kn->nrw, np = (co + nrw - 1) / nrw;
  const size_t upp = (size_t)np * ci * nrw;  // U floats per point
  const int tiles_h = (oh + 1) / 2, tiles_w = (ow + 1) / 2;
  const long T = (long)n * tiles_h * tiles_w;
  const long chunks = (T + WINO_TILES - 1) / WINO_TILES;
  const float* zero = zeros_of((size_t)ci);
  if (!zero) return;
  const size_t ldv_ = (size_t)points * ci + VL, ldm_ = (size_t)points * co + VL;  // between tiles
  const size_t vsize = WINO_TILES * ldv_, msize = WINO_TILES * ldm_;
  const int threads = chunks < g_threads ? (int)chunks : g_threads;
  for (int t = 0; t < threads; t++)
    if (!grow(&g_wv[t], &g_wvcap[t], vsize) || !grow(&g_wm[t], &g_wmcap[t], msize)) return;
#pragma omp parallel for schedule(dynamic, 1) num_threads(threads)
  for (long chk = 0; chk < chunks; chk++) {
    const int tid = thread_id();
    float* V = g_wv[tid];
    float* M = g_wm[tid];
    const long t0 = chk * WINO_TILES;
    const int nt = T - t0 < WINO_TILES ? (int)(T - t0) : WINO_TILES;
    if (r == 5)
      wino5_input(x, h, w, ci, tiles_h, tiles_w, pt, pl, t0, nt, zero, V);
    else
      wino_input(x, h, w, ci, tiles_h, tiles_w, pt, pl, t0, nt, zero, V);
    const int ldv = (int)ldv_, ldm = (int)ldm_;
    for (int p = 0; p < points; p++) {
      const float* Vp = V + (size_t)p * ci;
      float* Mp = M + (size_t)p * co;
      const float* rows[2 * MR];
      if (nrw == VL) {  // one panel of columns: the tall kernel
        for (int ir = 0; ir < nt; ir += 2 * MR) {
          const int mr = nt - ir < 2 * MR ? nt - ir : 2 * MR;
          for (int r = 0; r < 2 * MR; r++)
            rows[r] = Vp + (size_t)(ir + (r < mr ? r : mr - 1)) * ldv;
          micro_kernel_tall(ci, rows, 1, U + p * upp, Mp + (size_t)ir * ldm, ldm, mr, co, 0);
        }
        continue;
      }
      for (int ir = 0; ir < nt; ir += MR) {
        const int mr = nt - ir < MR ? nt - ir : MR;
        for (int r = 0; r < MR; r++) rows[r] = Vp + (size_t)(ir + (r < mr ? r : mr - 1)) * ldv;
        for (int jp = 0; jp < np; jp++) {
          const int jr = jp * nrw, nr = co - jr < nrw ? co - jr : nrw;
          kn->mki(1, ci, rows, U + p * upp + (size_t)jp * ci * nrw, Mp + (size_t)ir * ldm + jr, ldm,
                  mr, nr, 0, NULL, 0);
        }
      }
    }
    // y = Aᵀ·m·A per tile, written where the output exists
    for (int k = 0; k < nt; k++) {
      const float* m = M + (size_t)k * ldm_;
      float* out[2][2];
      wino_out_pixels(y, oh, ow, co, tiles_h, tiles_w, t0 + k, NULL, out);
      // whole vectors of channels, for the pixels of the tile that exist (a partial tile at the
      // bottom or right edge ran one lane at a time: 11 of the 36 tiles of an 11×11 output, most
      // of the output transform's time), the epilogue in the same pass
      int ch = 0;
      for (; ch + VL <= co; ch += VL) wino_out(m, co, ch, VL, r, out, accumulate, epi);
      if (ch < co) wino_out(m, co, ch, co - ch, r, out, accumulate, epi);
    }
  }
}

// Forward entry for a convolution that wino_ok() accepts.
// r: the filter's size, 3 (wino_ok) or 5 (wino5_ok).
static void wino_forward(const float* x, const float* f, float* y, int n, int h, int w, int ci,
                         int co, int oh, int ow, int pt, int pl, const epilogue_t* epi,
                         int accumulate, int r) {
  const int nrw = kernels_for(co)->nrw;
  float* U = grow(&g_wu, &g_wucap, (size_t)(r == 5 ? WT5 : WT) * round_up(co, nrw) * ci);
  if (!U) return;
  g_wino_calls++;
  if (r == 5)
    wino5_filter(f, ci, co, nrw, U);
  else
    wino_filter(f, ci, co, nrw, U);
  wino_conv(x, n, h, w, ci, pt, pl, oh, ow, U, co, y, epi, accumulate, r);
}

// Filter gradient dw [3][3][ci][co] of the convolution above, from x and dy [n, oh, ow, co].
static void wino_filter_grad(const float* x, const float* dy, float* dw_out, int n, int h, int w,
                             int ci, int co, int oh, int ow, int pt, int pl) {
  const kernels_t* kn = kernels_for(co);
  const int nrw = kn->nrw, np = (co + nrw - 1) / nrw;
  const int tiles_h = (oh + 1) / 2, tiles_w = (ow + 1) / 2;
  const long T = (long)n * tiles_h * tiles_w;
  const long chunks = (T + WINO_TILES - 1) / WINO_TILES;
  const size_t usize = (size_t)WT * ci * co;
  g_wino_calls++;
  // fixed parts of the chunks, set by the problem size (thread-count independent sums)
  const int P = chunks >= 2L * REDUCE_PARTS ? REDUCE_PARTS : 1;
  const float* zero = zeros_of((size_t)(ci > co ? ci : co));
  if (!zero) return;
  float* parts[REDUCE_PARTS];
  for (int p = 0; p < P; p++)
    if (!(parts[p] = grow(&g_part[p], &g_pcap[p], usize))) return;
  const int threads = P < g_threads ? P : g_threads;
  const size_t vsize = WINO_TILES * wino_ld(ci) + 2 * MR;  // reads 2·MR wide may pass the end
  const size_t zsize = (size_t)WT * np * WINO_TILES * nrw;
  for (int t = 0; t < threads; t++)
    if (!grow(&g_wv[t], &g_wvcap[t], vsize) || !grow(&g_wm[t], &g_wmcap[t], zsize)) return;
#pragma omp parallel for schedule(static) num_threads(threads)
  for (int part = 0; part < P; part++) {
    const int tid = thread_id();
    float* V = g_wv[tid];
    float* Z = g_wm[tid];
    float* dU = parts[part];
    memset(dU, 0, usize * sizeof(float));
    if (co % nrw) memset(Z, 0, zsize * sizeof(float));  // pad columns: computed, never stored
    const long c0 = chunks * part / P, c1 = chunks * (part + 1) / P;
    const float* aps[WINO_TILES];
    for (long chk = c0; chk < c1; chk++) {
      const long t0 = chk * WINO_TILES;
      const int nt = T - t0 < WINO_TILES ? (int)(T - t0) : WINO_TILES;
      wino_input(x, h, w, ci, tiles_h, tiles_w, pt, pl, t0, nt, zero, V);
      // Z = A·dy·Aᵀ per tile, as B panels: point ξ, panel jp: [tile][nrw]
      for (int k = 0; k < nt; k++) {
        float* g[2][2];
        // read only: the casts let the output-side helper serve dy too
        wino_out_pixels((float*)dy, oh, ow, co, tiles_h, tiles_w, t0 + k, (float*)zero, g);
        for (int jp = 0; jp < np; jp++) {
          const int jr = jp * nrw, nr = co - jr < nrw ? co - jr : nrw;
          float* zb = Z + ((size_t)jp * WINO_TILES + k) * nrw;
          const size_t zp = (size_t)np * WINO_TILES * nrw;  // between points
          int jj = 0;
          for (; jj + VL <= nr; jj += VL) {
            vf y00, y01, y10, y11;
            memcpy(&y00, g[0][0] + jr + jj, sizeof(vf));
            memcpy(&y01, g[0][1] + jr + jj, sizeof(vf));
            memcpy(&y10, g[1][0] + jr + jj, sizeof(vf));
            memcpy(&y11, g[1][1] + jr + jj, sizeof(vf));
            const vf zr[4][2] = {{y00, y01}, {y00 + y10, y01 + y11}, {y00 - y10, y01 - y11},
                                 {-y10, -y11}};
            for (int i = 0; i < 4; i++) {
              const vf z[4] = {zr[i][0], zr[i][0] + zr[i][1], zr[i][0] - zr[i][1], -zr[i][1]};
              for (int q = 0; q < 4; q++) memcpy(zb + (i * 4 + q) * zp + jj, &z[q], sizeof(vf));
            }
          }
          for (; jj < nr; jj++) {
            const int o = jr + jj;
            const float y00 = g[0][0][o], y01 = g[0][1][o], y10 = g[1][0][o], y11 = g[1][1][o];
            const float zr[4][2] = {{y00, y01}, {y00 + y10, y01 + y11}, {y00 - y10, y01 - y11},
                                    {-y10, -y11}};
            for (int i = 0; i < 4; i++) {
              zb[(i * 4 + 0) * zp + jj] = zr[i][0];
              zb[(i * 4 + 1) * zp + jj] = zr[i][0] + zr[i][1];
              zb[(i * 4 + 2) * zp + jj] = zr[i][0] - zr[i][1];
              zb[(i * 4 + 3) * zp + jj] = -zr[i][1];
            }
          }
        }
      }
      // dU[ξ] += V[ξ]ᵀ·Z[ξ]: rows are input channels, the depth is the chunk's tiles
      for (int p = 0; p < WT; p++) {
        const float* Vp = V + (size_t)p * ci;
        if (nrw == VL) {  // one panel of columns: the tall kernel, 2·MR channels per call
          for (int i0 = 0; i0 < ci; i0 += 2 * MR) {
            const int mr = ci - i0 < 2 * MR ? ci - i0 : 2 * MR;
            for (int k = 0; k < nt; k++) aps[k] = Vp + (size_t)k * wino_ld(ci) + i0;
            micro_kernel_tall(nt, aps, 0, Z + (size_t)p * WINO_TILES * nrw,
                              dU + (size_t)p * ci * co + (size_t)i0 * co, co, mr, co, 1);
          }
          continue;
        }
        for (int i0 = 0; i0 < ci; i0 += MR) {
          const int mr = ci - i0 < MR ? ci - i0 : MR;
          for (int k = 0; k < nt; k++) aps[k] = Vp + (size_t)k * wino_ld(ci) + i0;
          for (int jp = 0; jp < np; jp++) {
            const int jr = jp * nrw, nr = co - jr < nrw ? co - jr : nrw;
            kn->mkp(nt, aps, Z + ((size_t)p * np + jp) * WINO_TILES * nrw,
                    dU + (size_t)p * ci * co + (size_t)i0 * co + jr, co, mr, nr, 1);
          }
        }
      }
    }
  }
  float* dU = parts[0];
  for (int p = 1; p < P; p++)
    for (size_t i = 0; i < usize; i++) dU[i] += parts[p][i];
  // dg = Gᵀ·dU·G
  for (int i = 0; i < ci; i++)
    for (int o = 0; o < co; o++) {
      float X[4][4], r[3][4];
      for (int p = 0; p < WT; p++) X[p / 4][p % 4] = dU[((size_t)p * ci + i) * co + o];
      for (int j = 0; j < 4; j++) {
        r[0][j] = X[0][j] + 0.5f * (X[1][j] + X[2][j]);
        r[1][j] = 0.5f * (X[1][j] - X[2][j]);
        r[2][j] = 0.5f * (X[1][j] + X[2][j]) + X[3][j];
      }
      for (int y = 0; y < 3; y++) {
        float* d = dw_out + ((size_t)y * 3 * ci + i) * co + o;
        d[0] = r[y][0] + 0.5f * (r[y][1] + r[y][2]);
        d[(size_t)ci * co] = 0.5f * (r[y][1] - r[y][2]);
        d[(size_t)2 * ci * co] = 0.5f * (r[y][1] + r[y][2]) + r[y][3];
      }
    }
}

// Forward convolution, NHWC x [n,h,w,ci], filter [kh,kw,ci,co] -> y [n,oh,ow,co].
void gl_conv2d(const float* x, const float* f, float* y, int n, int h, int w, int ci, int kh,
               int kw, int co, int oh, int ow, int sh, int sw, int dh, int dw, int pt, int pl,
               const float* bias, int act, float alpha) {
  SERIALIZED;
  conv_t g = {x, n, h, w, ci, kh, kw, oh, ow, sh, sw, dh, dw, pt, pl, 1, 1};
  epilogue_t e = {bias, act, alpha};
  const epilogue_t* epi = (bias || act) ? &e : NULL;
  if (wino_ok(kh, kw, sh, sw, dh, dw, ci, co) && pt >= 0 && pl >= 0) {
    wino_forward(x, f, y, n, h, w, ci, co, oh, ow, pt, pl, epi, 0, 3);
    return;
  }
  if (wino5_ok(kh, kw, sh, sw, dh, dw, ci, co) && pt >= 0 && pl >= 0) {
    wino_forward(x, f, y, n, h, w, ci, co, oh, ow, pt, pl, epi, 0, 5);
    return;
  }
  if (ci >= INDIRECT_MIN_CHANNELS && kh * kw * ci > 0) {
    conv_indirect(&g, f, co, y, epi, g_threads);
    return;
  }
  matrix_t B = {f, co, 0};
  gemm(n * oh * ow, co, kh * kw * ci, pack_a_conv, &g, pack_b_matrix, &B, y, co, 0, epi, g_threads);
}

// Input gradient: dx [n,h,w,ci] from dy [n,oh,ow,co] and filter [kh,kw,ci,co]. It is the
// convolution of dy, dilated by the stride and padded by (k-1)*dil - pad, with the filter
// flipped in space and transposed in/out. With `accumulate`, dx += it (Winograd cases only: the
// caller checks backprop_input_accumulates()).
static void backprop_input(const float* dy, const float* f, float* dx, int n, int h, int w, int ci,
                           int kh, int kw, int co, int oh, int ow, int sh, int sw, int dh, int dw,
                           int pt, int pl, int accumulate) {
  size_t fsize = (size_t)kh * kw * ci * co;
  float* ft = grow(&g_wbuf, &g_wcap, fsize);
  if (!ft) return;
  for (int y = 0; y < kh; y++)
    for (int x = 0; x < kw; x++)
      for (int i = 0; i < ci; i++)
        for (int o = 0; o < co; o++)
          ft[(((size_t)(kh - 1 - y) * kw + (kw - 1 - x)) * co + o) * ci + i] =
              f[(((size_t)y * kw + x) * ci + i) * co + o];
  if (wino_ok(kh, kw, sh, sw, dh, dw, co, ci) && pt <= 2 && pl <= 2) {
    wino_forward(dy, ft, dx, n, oh, ow, co, ci, h, w, 2 - pt, 2 - pl, NULL, accumulate, 3);
    return;
  }
  if (wino5_ok(kh, kw, sh, sw, dh, dw, co, ci) && pt <= 4 && pl <= 4 && !accumulate) {
    wino_forward(dy, ft, dx, n, oh, ow, co, ci, h, w, 4 - pt, 4 - pl, NULL, 0, 5);
    return;
  }
  conv_t g = {dy, n, oh, ow, co, kh, kw, h, w, 1, 1, dh, dw,
              (kh - 1) * dh - pt, (kw - 1) * dw - pl, sh, sw};
  if (co >= INDIRECT_MIN_CHANNELS) {
    conv_indirect(&g, ft, ci, dx, NULL, g_threads);
    return;
  }
  matrix_t B = {ft, ci, 0};
  gemm(n * h * w, ci, kh * kw * co, pack_a_conv, &g, pack_b_matrix, &B, dx, ci, 0, NULL, g_threads);
}

// Whether backprop_input can add into dx (a 3×3 'same' stride-1 case that Winograd runs).
static int backprop_input_accumulates(int ci, int co) {
  return wino_ok(3, 3, 1, 1, 1, 1, co, ci);
}

void gl_conv2d_backprop_input(const float* dy, const float* f, float* dx, int n, int h, int w,
                              int ci, int kh, int kw, int co, int oh, int ow, int sh, int sw,
                              int dh, int dw, int pt, int pl) {
  SERIALIZED;
  backprop_input(dy, f, dx, n, h, w, ci, kh, kw, co, oh, ow, sh, sw, dh, dw, pt, pl, 0);
}

// Filter gradient: dW [kh,kw,ci,co] = sum over (n,oy,ox) of patch(x) (x) dy, as a GEMM whose
// A rows are (tap, channel) and whose depth is the output pixel; A is read in place (MR channels
// of one input pixel per depth step). The depth is split between threads, each with a private
// result, then summed.
static float* g_tail[MAX_THREADS];  // copies of pixels whose MR-wide read would pass the end of x
static size_t g_tlcap[MAX_THREADS];

static void filter_grad_range(const conv_t* g, const float* dy, int co, int m0, int m1, float* out,
                              int tid) {
  // with contiguous kernel rows a "tap" is a whole kernel row of kw·C channels
  const int merged = g->c <= ROW_TAP_MAX_CHANNELS && kernel_rows_contiguous(g);
  const int C = merged ? g->kw * g->c : g->c, taps = merged ? g->kh : g->kh * g->kw;
  const int pixel = g->c, span = merged ? 1 : g->kw;  // floats per input pixel; taps per row
  const float* xend = g->x + (size_t)g->n * g->h * g->w * pixel;
  const float* zero = zeros_of((size_t)C + MR);
  const kernels_t* kn = kernels_for(co);
  const int nrw = kn->nrw;
  float* bbuf = grow(&g_bloc[tid], &g_blcap[tid], round_up(co, nrw) * KC);
  float* tail = grow(&g_tail[tid], &g_tlcap[tid], (size_t)KC * MR);
  if (!zero || !bbuf || !tail) return;  // the error is recorded; the caller reports it
  const float* aps[KC];   // A row pointers of one panel, per depth step
  const float* base[KC];  // the input pixel under the current tap, per depth step (NULL: padding)
  const float* img[KC];   // the image of each depth step's output pixel
  int iy0[KC], ix0[KC];   // that pixel's window origin
  matrix_t B = {dy, co, 0};
  for (int pc = m0; pc < m1; pc += KC) {
    int kc = m1 - pc < KC ? m1 - pc : KC;
    pack_b_matrix(&B, bbuf, 0, co, pc, kc, nrw);
    {
      int m = pc;
      int ox = m % g->ow, t = m / g->ow;
      int oy = t % g->oh, nb = t / g->oh;
      for (int p = 0; p < kc; p++) {
        iy0[p] = oy * g->sh - g->pt;
        ix0[p] = ox * g->sw - g->pl;
        img[p] = g->x + (size_t)nb * g->h * g->w * pixel;
        if (++ox == g->ow) { ox = 0; if (++oy == g->oh) { oy = 0; nb++; } }
      }
    }
    for (int t = 0; t < taps; t++) {
      int ky = t / span, kx = t % span;
      for (int p = 0; p < kc; p++) {
        int iy = in_coord(iy0[p] + ky * g->dh, g->lh, g->h);
        int ix = in_coord(ix0[p] + kx * g->dw, g->lw, g->w);
        base[p] = (iy >= 0 && ix >= 0) ? img[p] + ((size_t)iy * g->w + ix) * pixel : NULL;
      }
      for (int ci0 = 0; ci0 < C; ci0 += MR) {
        int mr = C - ci0 < MR ? C - ci0 : MR;
        for (int p = 0; p < kc; p++) {
          const float* ptr = base[p] ? base[p] + ci0 : zero + ci0;
          if (base[p] && ptr + MR > xend) {
            float* slot = tail + (size_t)p * MR;
            for (int r = 0; r < MR; r++) slot[r] = r < mr ? ptr[r] : 0.f;
            ptr = slot;
          }
          aps[p] = ptr;
        }
        float* orow = out + ((size_t)t * C + ci0) * co;
        for (int jr = 0; jr < co; jr += nrw) {
          int nr = co - jr < nrw ? co - jr : nrw;
          kn->mkp(kc, aps, bbuf + (size_t)jr * kc, orow + jr, co, mr, nr, pc > m0);
        }
      }
    }
  }
}

void gl_conv2d_backprop_filter(const float* x, const float* dy, float* dw_out, int n, int h, int w,
                               int ci, int kh, int kw, int co, int oh, int ow, int sh, int sw,
                               int dh, int dw, int pt, int pl) {
  SERIALIZED;
  conv_t g = {x, n, h, w, ci, kh, kw, oh, ow, sh, sw, dh, dw, pt, pl, 1, 1};
  int K = kh * kw * ci, M = n * oh * ow;
  size_t osize = (size_t)K * co;
  if (M <= 0) {
    memset(dw_out, 0, osize * sizeof(float));
    return;
  }
  if (wino_ok(kh, kw, sh, sw, dh, dw, ci, co) && pt >= 0 && pl >= 0) {
    wino_filter_grad(x, dy, dw_out, n, h, w, ci, co, oh, ow, pt, pl);
    return;
  }
  // partial filter gradients over fixed slices of the output pixels (see REDUCE_PARTS)
  const int P = (double)K * co * M < 2e6 || M < 64 * REDUCE_PARTS ? 1 : REDUCE_PARTS;
  if (rows_after_padding(&g)) {  // whole kernel rows per tap, on a copy with the padding written
    conv_t padded;
    if (!pad_columns(&g, &g_padcols, &g_padcols_cap, &padded)) return;
    g = padded;
  }
  const int in_place = ci >= FILTER_INDIRECT_MIN_CHANNELS || kernel_rows_contiguous(&g);
  if (!in_place && P == 1) {  // narrow inputs: packed im2col^T blocks
    matrix_t B = {dy, co, 0};
    gemm(K, co, M, pack_a_conv_t, &g, pack_b_matrix, &B, dw_out, co, 0, NULL, 1);
    return;
  }
  if (!zeros_of((size_t)kw * ci + MR)) return;  // allocate before any thread reads it
  float* parts[REDUCE_PARTS];
  parts[0] = dw_out;
  for (int t = 1; t < P; t++)
    if (!(parts[t] = grow(&g_part[t], &g_pcap[t], osize))) return;
  int chunk = (M + P - 1) / P;
  chunk = (chunk + KC - 1) / KC * KC;
#pragma omp parallel num_threads(min_int(g_threads, P))
  {
    int tid = thread_id();
#pragma omp for schedule(static)
    for (int p = 0; p < P; p++) {
      int m0 = p * chunk, m1 = m0 + chunk < M ? m0 + chunk : M;
      float* out = parts[p];
      if (m1 <= m0) {
        memset(out, 0, osize * sizeof(float));
      } else if (in_place) {
        filter_grad_range(&g, dy, co, m0, m1, out, tid);
      } else {
        float* abuf = grow(&g_abuf[tid], &g_acap[tid], (size_t)MC * KC);
        const kernels_t* kn = kernels_for(co);
        const int nrw = kn->nrw;
        float* bbuf = grow(&g_bloc[tid], &g_blcap[tid], round_up(co, nrw) * KC);
        matrix_t B = {dy, co, 0};
        for (int pc = m0; abuf && bbuf && pc < m1; pc += KC) {
          int kc = m1 - pc < KC ? m1 - pc : KC;
          pack_b_matrix(&B, bbuf, 0, co, pc, kc, nrw);
          for (int ic = 0; ic < K; ic += MC) {
            int mc = K - ic < MC ? K - ic : MC;
            pack_a_conv_t(&g, abuf, ic, mc, pc, kc, MR);
            for (int jr = 0; jr < co; jr += nrw) {
              int nr = co - jr < nrw ? co - jr : nrw;
              for (int ir = 0; ir < mc; ir += MR) {
                int mr = mc - ir < MR ? mc - ir : MR;
                kn->mk(kc, abuf + (size_t)ir * kc, bbuf + (size_t)jr * kc,
                       out + (size_t)(ic + ir) * co + jr, co, mr, nr, pc > m0, NULL, 0);
              }
            }
          }
        }
      }
    }
#pragma omp for schedule(static)
    for (size_t i = 0; i < osize; i++) {
      float s = dw_out[i];
      for (int t = 1; t < P; t++) s += parts[t][i];
      dw_out[i] = s;
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Pooling and reductions that TF.js's wasm backend runs with scalar loops.

// Average-pool gradient, NHWC, for windows that lie wholly inside the input (no padding): each dy
// value spread evenly over its window. wasm's kernel took 4 ms for a 64×16×16×48 input.
void gl_avg_pool_grad(const float* dy, float* dx, int n, int h, int w, int c, int oh, int ow,
                      int kh, int kw, int sh, int sw) {
  SERIALIZED;
  const float scale = 1.f / (float)(kh * kw);
  memset(dx, 0, (size_t)n * h * w * c * sizeof(float));
  int threads = (double)n * h * w * c < 1e5 ? 1 : g_threads;
#pragma omp parallel for schedule(static) num_threads(threads)
  for (int b = 0; b < n; b++)
    for (int oy = 0; oy < oh; oy++)
      for (int ox = 0; ox < ow; ox++) {
        const float* g = dy + (((size_t)b * oh + oy) * ow + ox) * c;
        for (int ky = 0; ky < kh; ky++)
          for (int kx = 0; kx < kw; kx++) {
            float* d = dx + (((size_t)b * h + oy * sh + ky) * w + ox * sw + kx) * c;
            for (int k = 0; k < c; k++) d[k] += g[k] * scale;
          }
      }
}

// Max-pool gradient, NHWC: each dy value goes to the first maximum of its window in x (row-major
// window order, padding excluded), as TF.js's reference implementation does.
// Max-pool gradient for D gradient directions per example (the per-example engine's label
// seeds): x [n, h, w, c]; dy [n·D, oh, ow, c]; dx [n·D, h, w, c]. Each window's maximum and the
// position that takes its gradient are found once per example and serve all D directions (the
// engine repeated x and the pooled output D times and ran the single-direction kernel over n·D
// rows: 4.5 ms of a 10-label W3g batch at h = 16).
//
// positive = 1: a window whose maximum is not above 0 passes no gradient. Below a ReLU (x its
// output) that is the ReLU's derivative at the winner, so the engine skips its multiply (a pass
// over D gradients and their mask; lib/gradients/network.ts).
void gl_max_pool_grad_dirs(const float* x, const float* dy, float* dx, int D, int n, int h, int w,
                           int c, int oh, int ow, int kh, int kw, int sh, int sw, int pt, int pl,
                           int positive) {
  SERIALIZED;
  const size_t img = (size_t)h * w * c, oimg = (size_t)oh * ow * c;
  enum { CH = 64, WIN = 64 };
  const int vec_ok = kh * kw <= WIN;
  // Windows that do not overlap (GradNet's 2×2 pools) write each of their pixels once, so dx is
  // stored rather than zeroed and then added to; only pixels no window covers are zeroed.
  unsigned char* covered = NULL;
  if (sh >= kh && sw >= kw && (covered = (unsigned char*)calloc((size_t)h * w, 1)) != NULL) {
    for (int oy = 0; oy < oh; oy++)
      for (int ox = 0; ox < ow; ox++)
        for (int ky = 0; ky < kh; ky++)
          for (int kx = 0; kx < kw; kx++) {
            const int iy = oy * sh - pt + ky, ix = ox * sw - pl + kx;
            if (iy >= 0 && iy < h && ix >= 0 && ix < w) covered[iy * w + ix] = 1;
          }
  }
  const int disjoint = covered != NULL;
#pragma omp parallel for schedule(static) num_threads(g_threads)
  for (int b = 0; b < n; b++) {
    const float* xb = x + b * img;
    float* dxb = dx + (size_t)b * D * img;
    const float* dyb = dy + (size_t)b * D * oimg;
    if (!disjoint) {
      memset(dxb, 0, (size_t)D * img * sizeof(float));
    } else {
      for (int q = 0; q < h * w; q++)
        if (!covered[q])
          for (int d = 0; d < D; d++) memset(dxb + d * img + (size_t)q * c, 0, (size_t)c * sizeof(float));
    }
    float best[CH];
    int where[CH];
    vi takes[WIN];
    int at[kh * kw];  // the window's pixels inside the input, in scan order (offsets in xb)
    for (int oy = 0; oy < oh; oy++) {
      for (int ox = 0; ox < ow; ox++) {
        const size_t cell = ((size_t)oy * ow + ox) * c;
        const int y0 = oy * sh - pt, x0 = ox * sw - pl;
        int npos = 0;
        for (int ky = 0; ky < kh; ky++) {
          const int iy = y0 + ky;
          if (iy < 0 || iy >= h) continue;
          for (int kx = 0; kx < kw; kx++) {
            const int ix = x0 + kx;
            if (ix >= 0 && ix < w) at[npos++] = (iy * w + ix) * c;
          }
        }
        int c0 = 0;
        // whole vectors of channels: the window's maximum, then its first position that holds it
        // (the scalar loop's rule: the first strictly greater value wins, -inf and NaN never do)
        for (; vec_ok && c0 + VL <= c; c0 += VL) {
          vf m = (vf){0} - INFINITY;
          for (int q = 0; q < npos; q++) {
            vf v;
            memcpy(&v, xb + at[q] + c0, sizeof(vf));
            m = select_vf(v > m, v, m);
          }
          vi open = (vi){0} - 1;  // lanes whose gradient no position has taken yet
          const vi found = positive ? m > (vf){0} : m > ((vf){0} - INFINITY);
          for (int q = 0; q < npos; q++) {
            vf v;
            memcpy(&v, xb + at[q] + c0, sizeof(vf));
            takes[q] = (v == m) & found & open;
            open &= ~takes[q];
          }
          for (int d = 0; d < D; d++) {
            vf gv;
            memcpy(&gv, dyb + d * oimg + cell + c0, sizeof(vf));
            float* dxd = dxb + d * img + c0;
            for (int q = 0; q < npos; q++) {
              vf acc = select_vf(takes[q], gv, (vf){0});
              if (!disjoint) {
                vf old;
                memcpy(&old, dxd + at[q], sizeof(vf));
                acc += old;
              }
              memcpy(dxd + at[q], &acc, sizeof(vf));
            }
          }
        }
        for (; c0 < c; c0 += CH) {
          const int cn = c - c0 < CH ? c - c0 : CH;
          for (int j = 0; j < cn; j++) { best[j] = -INFINITY; where[j] = -1; }
          for (int q = 0; q < npos; q++) {
            const float* xp = xb + at[q] + c0;
            for (int j = 0; j < cn; j++) {
              if (xp[j] > best[j]) { best[j] = xp[j]; where[j] = at[q] + c0 + j; }
            }
          }
          for (int j = 0; j < cn; j++)
            if (positive && !(best[j] > 0.f)) where[j] = -1;
          if (disjoint)
            for (int d = 0; d < D; d++)
              for (int q = 0; q < npos; q++) memset(dxb + d * img + at[q] + c0, 0, (size_t)cn * sizeof(float));
          for (int d = 0; d < D; d++)
            for (int j = 0; j < cn; j++)
              if (where[j] >= 0) dxb[d * img + where[j]] += dyb[d * oimg + cell + c0 + j];
        }
      }
    }
  }
  free(covered);
}

void gl_max_pool_grad(const float* x, const float* dy, float* dx, int n, int h, int w, int c,
                      int oh, int ow, int kh, int kw, int sh, int sw, int pt, int pl) {
  gl_max_pool_grad_dirs(x, dy, dx, 1, n, h, w, c, oh, ow, kh, kw, sh, sw, pt, pl, 0);
}

// out[cols] = sum over rows of x[rows][cols] (reduce leading axes).
void gl_sum_rows(const float* x, float* out, int rows, int cols) {
  SERIALIZED;
  const int P = (double)rows * cols < 1e5 || rows < 2 * REDUCE_PARTS ? 1 : REDUCE_PARTS;
  float* parts[REDUCE_PARTS];
  for (int t = 1; t < P; t++)
    if (!(parts[t] = grow(&g_part[t], &g_pcap[t], (size_t)cols))) return;
  parts[0] = out;
  const int chunk = (rows + P - 1) / P;
#pragma omp parallel num_threads(min_int(g_threads, P))
  {
#pragma omp for schedule(static)
    for (int p = 0; p < P; p++) {
      int r0 = p * chunk, r1 = r0 + chunk < rows ? r0 + chunk : rows;
      float* acc = parts[p];
      memset(acc, 0, (size_t)cols * sizeof(float));
      for (int r = r0; r < r1; r++) {
        const float* xr = x + (size_t)r * cols;
        for (int j = 0; j < cols; j++) acc[j] += xr[j];
      }
    }
#pragma omp for schedule(static)
    for (int j = 0; j < cols; j++) {
      float s = out[j];
      for (int t = 1; t < P; t++) s += parts[t][j];
      out[j] = s;
    }
  }
}

// Element-wise a (op) b for n values, b one value when b_len is 1: op 0 add, 1 subtract,
// 2 multiply. The wasm kernels run these on one thread at 128 bits; on 2 M values at 1 thread a
// product took 0.35 ms there and 0.30 here, Step 0.34 and 0.17 (memory-bound either way).
void gl_binary(const float* a, const float* b, float* out, long n, long b_len, int op) {
  SERIALIZED;
  const int threads = memory_threads((double)n);
  const float s = b_len == 1 ? b[0] : 0.f;
#pragma omp parallel for schedule(static) num_threads(threads)
  for (long i = 0; i < n; i++) {
    const float y = b_len == 1 ? s : b[i];
    out[i] = op == 0 ? a[i] + y : op == 1 ? a[i] - y : a[i] * y;
  }
}

// out[i, d, j] = a[i, d, j] (op) b[i, j]: a [n, D, m], b [n, 1, m] (a per-example mask applied to
// D gradient directions)
void gl_binary_dirs(const float* a, const float* b, float* out, long n, long D, long m, int op) {
  SERIALIZED;
  const int threads = memory_threads((double)n * D * m);
#pragma omp parallel for schedule(static) num_threads(threads)
  for (long r = 0; r < n * D; r++) {
    const float* ar = a + r * m;
    const float* br = b + (r / D) * m;
    float* o = out + r * m;
    if (op == 0)
      for (long j = 0; j < m; j++) o[j] = ar[j] + br[j];
    else if (op == 1)
      for (long j = 0; j < m; j++) o[j] = ar[j] - br[j];
    else
      for (long j = 0; j < m; j++) o[j] = ar[j] * br[j];
  }
}

// out = x > 0 ? 1 : (x is NaN ? NaN : alpha), TF's Step
void gl_step(const float* x, float* out, long n, float alpha) {
  SERIALIZED;
  const int threads = memory_threads((double)n);
#pragma omp parallel for schedule(static) num_threads(threads)
  for (long i = 0; i < n; i++) out[i] = x[i] > 0.f ? 1.f : (x[i] != x[i] ? x[i] : alpha);
}

// out[rows] = sum over cols of x[rows][cols] (reduce trailing axes).
void gl_sum_cols(const float* x, float* out, int rows, int cols) {
  SERIALIZED;
  int threads = memory_threads((double)rows * cols);
#pragma omp parallel for schedule(static) num_threads(threads)
  for (int r = 0; r < rows; r++) {
    const float* xr = x + (size_t)r * cols;
    vf acc = (vf){0};
    int j = 0;
    for (; j + VL <= cols; j += VL) {
      vf v;
      memcpy(&v, xr + j, sizeof(vf));
      acc += v;
    }
    float s = 0.f;
    for (int l = 0; l < VL; l++) s += acc[l];
    for (; j < cols; j++) s += xr[j];
    out[r] = s;
  }
}

// ---------------------------------------------------------------------------------------------
// Data movement the wasm backend does slowly.

// Patches of an NHWC input: out[n][oy*ow+ox][(ky*kw+kx)*c + ci], zeros where the window leaves
// the (padded) image. The matrix per-example convolution gradients multiply with.
void gl_im2col(const float* x, float* out, int n, int h, int w, int c, int kh, int kw, int oh,
               int ow, int sh, int sw, int pt, int pl) {
  SERIALIZED;
  const size_t K = (size_t)kh * kw * c;
#pragma omp parallel for schedule(static) num_threads(g_threads)
  for (int b = 0; b < n; b++) {
    const float* xb = x + (size_t)b * h * w * c;
    for (int oy = 0; oy < oh; oy++) {
      for (int ox = 0; ox < ow; ox++) {
        float* o = out + (((size_t)b * oh + oy) * ow + ox) * K;
        for (int ky = 0; ky < kh; ky++) {
          int iy = oy * sh - pt + ky;
          for (int kx = 0; kx < kw; kx++, o += c) {
            int ix = ox * sw - pl + kx;
            if (iy < 0 || iy >= h || ix < 0 || ix >= w) memset(o, 0, (size_t)c * sizeof(float));
            else memcpy(o, xb + ((size_t)iy * w + ix) * c, (size_t)c * sizeof(float));
          }
        }
      }
    }
  }
}

// General strided block copy for Slice: out has shape size[0..rank), read from x (shape xs) at
// begin; rank <= 8. The innermost dimension is copied with memcpy.
void gl_slice(const float* x, float* out, int rank, const int* xs, const int* begin, const int* size) {
  SERIALIZED;
  long strides[8];
  strides[rank - 1] = 1;
  for (int d = rank - 2; d >= 0; d--) strides[d] = strides[d + 1] * xs[d + 1];
  long outer = 1;
  for (int d = 0; d < rank - 1; d++) outer *= size[d];
  const int inner = size[rank - 1];
  int threads = memory_threads((double)outer * inner);
#pragma omp parallel for schedule(static) num_threads(threads)
  for (long r = 0; r < outer; r++) {
    long rem = r, off = 0;
    for (int d = rank - 2; d >= 0; d--) {
      long i = rem % size[d];
      rem /= size[d];
      off += (begin[d] + i) * strides[d];
    }
    memcpy(out + r * inner, x + off + begin[rank - 1], (size_t)inner * sizeof(float));
  }
}

// Constant padding: out (shape os) holds `value` everywhere except x (shape xs) placed at offset
// `before`; rank <= 8. The copies are runs over the innermost padded axis and everything after it
// (contiguous on both sides).
void gl_pad(const float* x, float* out, int rank, const int* xs, const int* os, const int* before,
            float value) {
  SERIALIZED;
  long ostr[8];
  ostr[rank - 1] = 1;
  for (int d = rank - 2; d >= 0; d--) ostr[d] = ostr[d + 1] * os[d + 1];
  const long total = ostr[0] * os[0];
  int threads = memory_threads((double)total);
#pragma omp parallel for schedule(static) num_threads(threads)
  for (long i = 0; i < total; i++) out[i] = value;
  int last = 0;  // the innermost padded axis (0 when none)
  for (int d = 0; d < rank; d++)
    if (os[d] != xs[d]) last = d;
  long inner = 1, outer = 1;
  for (int d = last; d < rank; d++) inner *= xs[d];
  for (int d = 0; d < last; d++) outer *= xs[d];
  long base = 0;
  for (int d = 0; d < rank; d++) base += before[d] * ostr[d];
#pragma omp parallel for schedule(static) num_threads(threads)
  for (long r = 0; r < outer; r++) {
    long rem = r, off = base;
    for (int d = last - 1; d >= 0; d--) {
      off += (rem % xs[d]) * ostr[d];
      rem /= xs[d];
    }
    memcpy(out + off, x + r * inner, (size_t)inner * sizeof(float));
  }
}

// A block of `rows` rows of `cols` values: dst[r·dld + c] = src[r·sld + c]. Concatenation and
// splitting along any axis are one such copy per input (rows = product of the leading axes).
// Contiguous blocks are one copy; narrow rows (a GUNN segment: 16 floats) are copied inline, as a
// call to memcpy per 64-byte row cost more than the copy (7 % of a W4 step, perf).
void gl_copy_block(const float* src, long sld, float* dst, long dld, long rows, long cols) {
  SERIALIZED;
  int threads = memory_threads((double)rows * cols);
  if (sld == cols && dld == cols) {
    const long n = rows * cols, per = (n + threads - 1) / threads;
#pragma omp parallel for schedule(static) num_threads(threads)
    for (int t = 0; t < threads; t++) {
      const long a = t * per, b = a + per < n ? a + per : n;
      if (b > a) memcpy(dst + a, src + a, (size_t)(b - a) * sizeof(float));
    }
    return;
  }
  if (cols <= 4 * VL) {
#pragma omp parallel for schedule(static) num_threads(threads)
    for (long r = 0; r < rows; r++) {
      const float* restrict s = src + r * sld;
      float* restrict d = dst + r * dld;
#pragma omp simd
      for (long c = 0; c < cols; c++) d[c] = s[c];
    }
    return;
  }
#pragma omp parallel for schedule(static) num_threads(threads)
  for (long r = 0; r < rows; r++) memcpy(dst + r * dld, src + r * sld, (size_t)cols * sizeof(float));
}

// ---------------------------------------------------------------------------------------------
// One SGD step of a parameter, as lib/train/optimizers.ts's Sgd: d = g + wd·p; with momentum
// v' = μv + d and d = nesterov ? d + μv' : v'; p' = p − lr·d. One pass instead of ~8 kernels.
void gl_sgd_update(const float* p, const float* g, const float* v, float* p_out, float* v_out,
                   long n, float lr, float mu, float wd, int nesterov) {
  SERIALIZED;
  int threads = memory_threads((double)n);
#pragma omp parallel for schedule(static) num_threads(threads)
  for (long i = 0; i < n; i++) {
    float d = g[i] + p[i] * wd;
    if (v) {
      float nv = v[i] * mu + d;
      v_out[i] = nv;
      d = nesterov ? d + nv * mu : nv;
    }
    p_out[i] = p[i] - d * lr;
  }
}

// RMSProp (lib/train/optimizers.ts): s' = ρs + (1 − ρ)g²; p' = p − lr·g/√(s' + ε).
void gl_rmsprop_update(const float* p, const float* g, const float* s, float* p_out, float* s_out,
                       long n, float lr, float rho, float eps) {
  SERIALIZED;
  int threads = memory_threads((double)n);
#pragma omp parallel for schedule(static) num_threads(threads)
  for (long i = 0; i < n; i++) {
    float ns = s[i] * rho + g[i] * g[i] * (1.0f - rho);
    s_out[i] = ns;
    p_out[i] = p[i] - g[i] * lr / sqrtf(ns + eps);
  }
}

// ---------------------------------------------------------------------------------------------
// Training-mode batch normalisation over the rows of x [rows, c] (rows = N·H·W), per channel:
// y = γ·(x − μ)·r + β with r = 1/√(var + ε) (biased variance). The backward pass recomputes
// x̂ = (x − μ)·r from x rather than keeping it:
//   dβ = Σ dy,  dγ = Σ dy·x̂,  dx = γ·r/m · (m·dy − dβ − x̂·dγ).
// Sums run in double, per thread over a fixed row range, combined in thread order: the result
// does not depend on scheduling.

static double* g_bnpart;
static size_t g_bnpcap;

// per-thread partial column sums of f(row) over the thread's row range, combined into out[c]
static void bn_column_sums(int parts, long rows, int c, double* out,
                           void (*acc)(const void*, long, long, int, double*, double*),
                           const void* ctx, double* out2) {
  size_t need = (size_t)parts * 2 * c;
  if (need > g_bnpcap) {
    free(g_bnpart);
    g_bnpart = (double*)malloc(need * sizeof(double));
    g_bnpcap = g_bnpart ? need : 0;
    if (!g_bnpart) {
      alloc_failed("batch-norm partial sums", need * sizeof(double));
      return;
    }
  }
  double* part = g_bnpart;
  const long chunk = (rows + parts - 1) / parts;
#pragma omp parallel for schedule(static) num_threads(min_int(memory_threads((double)rows * c), parts))
  for (int p = 0; p < parts; p++) {
    long r0 = p * chunk, r1 = r0 + chunk < rows ? r0 + chunk : rows;
    double* p1 = part + (size_t)p * 2 * c;
    double* p2 = p1 + c;
    memset(p1, 0, 2 * c * sizeof(double));
    if (r1 > r0) acc(ctx, r0, r1, c, p1, p2);
  }
  for (int k = 0; k < c; k++) {
    double a = 0, b = 0;
    for (int t = 0; t < parts; t++) {
      a += part[(size_t)t * 2 * c + k];
      b += part[(size_t)t * 2 * c + c + k];
    }
    out[k] = a;
    if (out2) out2[k] = b;
  }
}

typedef struct {
  const float* x;
  const float* dy;
  const double* mean;
  const double* rstd;
} bn_ctx_t;

// Per-channel loops over rows × c run as flat vector loops whatever c is: a per-channel array
// repeated VL times (a "pattern", VL·c floats: a whole number of vectors) lines up with every
// group of VL rows. With the 6–18 channels of a GUNN unit the loop over a row's channels hardly
// vectorised: the batch norms were 13 % of a mini-GUNN step (perf). Sums run in float over
// blocks of BN_BLOCK rows (at most 64 roundings), then fold into the double totals.
#define BN_BLOCK 64

// dst[v·c + k] = src[k] for v < VL; NULL (error recorded) when out of memory
static float* bn_patterns(int count, const float* const* src, int c) {
  const size_t P = (size_t)VL * c;
  float* dst = (float*)malloc((size_t)count * P * sizeof(float));
  if (!dst) {
    alloc_failed("batch-norm channel patterns", (size_t)count * P * sizeof(float));
    return NULL;
  }
  for (int i = 0; i < count; i++)
    for (int v = 0; v < VL; v++)
      if (src[i]) memcpy(dst + i * P + (size_t)v * c, src[i], c * sizeof(float));
  return dst;
}

// s[k] += Σ_v f[v·c + k]
static void bn_fold(const float* f, int c, double* s) {
  for (int v = 0; v < VL; v++)
    for (int k = 0; k < c; k++) s[k] += f[(size_t)v * c + k];
}

// what to accumulate: 0 Σx, 1 Σ(x−μ)², 2 Σdy and Σdy·(x−μ)
static void bn_accumulate(const bn_ctx_t* ctx, int what, long r0, long r1, int c, double* s1,
                          double* s2) {
  const size_t P = (size_t)VL * c;
  float* muk = NULL;
  if (what > 0) {
    muk = (float*)malloc(c * sizeof(float));
    if (!muk) {
      alloc_failed("batch-norm means", c * sizeof(float));
      return;
    }
    for (int k = 0; k < c; k++) muk[k] = (float)ctx->mean[k];
  }
  const float* srcs[3] = {muk, NULL, NULL};
  float* buf = bn_patterns(3, srcs, c);  // the μ pattern (when needed), two accumulators
  if (!buf) {
    free(muk);
    return;
  }
  const float* restrict mu = buf;
  float* restrict f = buf + P;
  float* restrict g = buf + 2 * P;
  const long groups = (r1 - r0) / VL;
  const float* x = ctx->x + r0 * c;
  const float* dy = ctx->dy ? ctx->dy + r0 * c : NULL;
  for (long g0 = 0; g0 < groups; g0 += BN_BLOCK / VL) {
    const long g1 = g0 + BN_BLOCK / VL < groups ? g0 + BN_BLOCK / VL : groups;
    memset(f, 0, 2 * P * sizeof(float));
    for (long gi = g0; gi < g1; gi++) {
      const float* restrict xs = x + gi * P;
      if (what == 0) {
        for (size_t j = 0; j < P; j++) f[j] += xs[j];
      } else if (what == 1) {
        for (size_t j = 0; j < P; j++) {
          const float d = xs[j] - mu[j];
          f[j] += d * d;
        }
      } else {
        const float* restrict gs = dy + gi * P;
        for (size_t j = 0; j < P; j++) {
          f[j] += gs[j];
          g[j] += gs[j] * (xs[j] - mu[j]);
        }
      }
    }
    bn_fold(f, c, s1);
    if (what == 2) bn_fold(g, c, s2);
  }
  // the last rows, fewer than VL
  for (long r = r0 + groups * VL; r < r1; r++) {
    const float* xr = ctx->x + r * c;
    for (int k = 0; k < c; k++) {
      if (what == 0) {
        s1[k] += xr[k];
      } else if (what == 1) {
        const float d = xr[k] - mu[k];
        s1[k] += d * d;
      } else {
        const float gk = ctx->dy[r * c + k];
        s1[k] += gk;
        s2[k] += gk * (xr[k] - mu[k]);
      }
    }
  }
  if (what == 2)
    for (int k = 0; k < c; k++) s2[k] *= ctx->rstd[k];
  free(buf);
  free(muk);
}

static void acc_sum(const void* vctx, long r0, long r1, int c, double* s, double* unused) {
  (void)unused;
  bn_accumulate((const bn_ctx_t*)vctx, 0, r0, r1, c, s, NULL);
}

static void acc_centred_sq(const void* vctx, long r0, long r1, int c, double* s, double* unused) {
  (void)unused;
  bn_accumulate((const bn_ctx_t*)vctx, 1, r0, r1, c, s, NULL);
}

static void acc_grad(const void* vctx, long r0, long r1, int c, double* sdy, double* sdyx) {
  bn_accumulate((const bn_ctx_t*)vctx, 2, r0, r1, c, sdy, sdyx);
}

// y[r·c + k] = x[r·c + k]·a[k] + (b ? z[r·c + k]·b[k] : 0) + d[k] over rows × c (see bn_patterns)
static void bn_affine(const float* x, const float* a, const float* z, const float* b,
                      const float* d, float* y, long rows, int c, int threads) {
  const float* srcs[3] = {a, b, d};
  float* pat = bn_patterns(3, srcs, c);
  if (!pat) return;
  const size_t P = (size_t)VL * c;
  const float* pa = pat;
  const float* pb = pat + P;
  const float* pd = pat + 2 * P;
  const long groups = rows / VL;
#pragma omp parallel for schedule(static) num_threads(threads)
  for (long gi = 0; gi < groups; gi++) {
    const float* xs = x + gi * P;
    float* ys = y + gi * P;
    if (z) {
      const float* zs = z + gi * P;
      for (size_t j = 0; j < P; j++) ys[j] = pa[j] * xs[j] + pb[j] * zs[j] + pd[j];
    } else {
      for (size_t j = 0; j < P; j++) ys[j] = xs[j] * pa[j] + pd[j];
    }
  }
  for (long r = groups * VL; r < rows; r++)
    for (int k = 0; k < c; k++) {
      const size_t i = (size_t)r * c + k;
      y[i] = z ? a[k] * x[i] + b[k] * z[i] + d[k] : x[i] * a[k] + d[k];
    }
  free(pat);
}

// partial sums of a batch norm's statistics (see REDUCE_PARTS)
static int bn_parts(long rows, int c) {
  return (double)rows * c < 1e5 || rows < 4 * REDUCE_PARTS ? 1 : REDUCE_PARTS;
}

// mean, var: biased batch statistics (outputs, c floats); rstd = 1/√(var + ε)
void gl_bn_forward(const float* x, const float* gamma, const float* beta, float* y, float* mean,
                   float* var, float* rstd, long rows, int c, float eps) {
  SERIALIZED;
  const int parts = bn_parts(rows, c), threads = parts > 1 ? memory_threads((double)rows * c) : 1;
  double* m = (double*)malloc(3 * (size_t)c * sizeof(double));
  float* scale = (float*)malloc(2 * (size_t)c * sizeof(float));
  if (!m || !scale) {
    alloc_failed("batch-norm statistics", 3 * (size_t)c * sizeof(double));
    free(m);
    free(scale);
    return;
  }
  double* v = m + c;
  double* r = v + c;
  bn_ctx_t ctx = {x, NULL, m, NULL};
  bn_column_sums(parts, rows, c, m, acc_sum, &ctx, NULL);
  for (int k = 0; k < c; k++) m[k] /= (double)rows;
  bn_column_sums(parts, rows, c, v, acc_centred_sq, &ctx, NULL);
  float* shift = scale + c;
  for (int k = 0; k < c; k++) {
    v[k] /= (double)rows;
    r[k] = 1.0 / sqrt(v[k] + eps);
    mean[k] = (float)m[k];
    var[k] = (float)v[k];
    rstd[k] = (float)r[k];
    scale[k] = (float)(gamma[k] * r[k]);
    shift[k] = (float)(beta[k] - gamma[k] * r[k] * m[k]);
  }
  bn_affine(x, scale, NULL, NULL, shift, y, rows, c, threads);
  free(scale);
  free(m);
}

void gl_bn_backward(const float* x, const float* dy, const float* gamma, const float* mean,
                    const float* rstd, float* dx, float* dgamma, float* dbeta, long rows, int c) {
  SERIALIZED;
  const int parts = bn_parts(rows, c), threads = parts > 1 ? memory_threads((double)rows * c) : 1;
  double* m = (double*)malloc(4 * (size_t)c * sizeof(double));
  float* a = (float*)malloc(3 * (size_t)c * sizeof(float));
  if (!m || !a) {
    alloc_failed("batch-norm statistics", 4 * (size_t)c * sizeof(double));
    free(m);
    free(a);
    return;
  }
  double* r = m + c;
  double* sdy = r + c;
  double* sdyx = sdy + c;
  for (int k = 0; k < c; k++) {
    m[k] = mean[k];
    r[k] = rstd[k];
  }
  bn_ctx_t ctx = {x, dy, m, r};
  bn_column_sums(parts, rows, c, sdy, acc_grad, &ctx, sdyx);
  float* b = a + c;
  float* d = b + c;
  // dx = a·dy + b·x + d, per channel: a = γr, b = −γr²·dγ/m, d = −γr/m·(dβ − μ·r·dγ)
  for (int k = 0; k < c; k++) {
    double gr = gamma[k] * r[k];
    dbeta[k] = (float)sdy[k];
    dgamma[k] = (float)sdyx[k];
    a[k] = (float)gr;
    b[k] = (float)(-gr * r[k] * sdyx[k] / rows);
    d[k] = (float)(-gr / rows * (sdy[k] - m[k] * r[k] * sdyx[k]));
  }
  bn_affine(dy, a, x, b, d, dx, rows, c, threads);
  free(a);
  free(m);
}

// ---------------------------------------------------------------------------------------------
// Backward passes over sparse deltas. Below a max-pool, a conv layer's output delta has one
// nonzero position per pooling window and channel (a 2×2 pool: a quarter of the positions, a
// third of an 11×11 map pooled to 6×6), and the ReLU in between zeroes more. The delta's zeros are
// the same for all D directions of an example (the pool's winners and the ReLU's mask come from
// the forward pass). The dense products spend most of their multiplies on those zeros: W3g's
// 10-label batch at h = 64 spent 36 % of its time in the per-example filter gradients and 32 %
// in convolutions, 71 % of whose multiplies are zeros.
//
// So per example, the nonzero (position, channel) pairs are listed once — a pair is kept when any
// direction's value is nonzero (NaN included) — with their D values side by side, and the sums
// run over the list. Skipping exact zeros changes only the order of the remaining additions (and
// a product 0 · ±inf or 0 · NaN, which the dense product would turn into NaN), so results agree
// with the dense kernels to rounding.

// Listed pairs above this fraction of all pairs run the dense kernels instead (not tuned:
// cnn_cifar's pooled deltas list 25–30 % of the pairs; a ReLU without a pool leaves about half).
#define SPARSE_MAX_DENSITY 0.45
// Nor do products with fewer multiply-adds than this per pair and kernel row (the row's values
// times the directions): a guard for rows of a few values, where the lists would cost more than
// the zeros save. Not tuned below 15: GradNet's first layer (rows of 15 values) at 1 label ran a
// W3g batch at h = 16 in 4.1 ms sparse against 4.4 ms dense (3 alternating runs; 64 here kept it
// dense).
#define SPARSE_MIN_WORK 8

#if defined(__AVX512F__)
// r[k][c] = r[c][k] for 16 rows of 16 floats, in registers.
ALWAYS_INLINE void transpose16(__m512 r[16]) {
  __m512 t[16];
  for (int i = 0; i < 16; i += 2) {
    t[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);
    t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
  }
  for (int i = 0; i < 16; i += 4) {  // r[i + m], 128-bit lane L: column 4L + m of rows i..i+3
    const __m512d a = _mm512_castps_pd(t[i]), b = _mm512_castps_pd(t[i + 2]);
    const __m512d c = _mm512_castps_pd(t[i + 1]), d = _mm512_castps_pd(t[i + 3]);
    r[i] = _mm512_castpd_ps(_mm512_unpacklo_pd(a, b));
    r[i + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(a, b));
    r[i + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(c, d));
    r[i + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(c, d));
  }
  for (int m = 0; m < 4; m++) {
    t[m] = _mm512_shuffle_f32x4(r[m], r[4 + m], 0x88);
    t[4 + m] = _mm512_shuffle_f32x4(r[m], r[4 + m], 0xdd);
    t[8 + m] = _mm512_shuffle_f32x4(r[8 + m], r[12 + m], 0x88);
    t[12 + m] = _mm512_shuffle_f32x4(r[8 + m], r[12 + m], 0xdd);
  }
  for (int m = 0; m < 4; m++) {
    r[m] = _mm512_shuffle_f32x4(t[m], t[8 + m], 0x88);
    r[8 + m] = _mm512_shuffle_f32x4(t[m], t[8 + m], 0xdd);
    r[4 + m] = _mm512_shuffle_f32x4(t[4 + m], t[12 + m], 0x88);
    r[12 + m] = _mm512_shuffle_f32x4(t[4 + m], t[12 + m], 0xdd);
  }
}
#endif

// dst[k·ds + c] = src[c·ss + k] for c < cn, k < kn (cn, kn ≤ 16; src rows readable to 16).
static void transpose_block(const float* src, size_t ss, int cn, float* dst, size_t ds, int kn) {
#if defined(__AVX512F__)
  if (cn == 16) {  // reads 16 values of each source row whatever kn is
    __m512 r[16];
    for (int i = 0; i < 16; i++) r[i] = _mm512_loadu_ps(src + i * ss);
    transpose16(r);
    for (int k = 0; k < kn; k++) _mm512_storeu_ps(dst + k * ds, r[k]);
    return;
  }
#endif
  for (int k = 0; k < kn; k++)
    for (int c = 0; c < cn; c++) dst[k * ds + c] = src[c * ss + k];
}

// Bit l set: channel l of at[0 .. cn) (cn ≤ 16) is nonzero (or NaN) in some of the D directions,
// which lie dstride floats apart.
static unsigned live_channels(const float* at, size_t dstride, int D, int cn) {
  unsigned live = 0;
#if defined(__AVX512F__)
  const __mmask16 lanes = (__mmask16)((1u << cn) - 1);
  for (int d = 0; d < D; d++)
    live |= _mm512_mask_cmp_ps_mask(lanes, _mm512_maskz_loadu_ps(lanes, at + d * dstride),
                                    _mm512_setzero_ps(), _CMP_NEQ_UQ);
#else
  for (int d = 0; d < D; d++)
    for (int l = 0; l < cn; l++) live |= (unsigned)(at[d * dstride + l] != 0.f) << l;
#endif
  return live;
}

// Floats between two channels' lists: a list may be written a vector past its end.
static int sparse_stride(int pix) { return pix + 16; }

// The lists of one example. By channel (filter gradient): cnt[c] pairs of channel c, map[p] of
// their positions p in idx[c·ls + j] and their values in val[(c·ls + j)·D + d], ls =
// sparse_stride(pix). By position (input gradient): cnt[p], channels idx[p·co + j], values
// val[(p·co + j)·D + d]. Positions ascend in a channel's list, channels in a position's.
static void sparse_lists(const float* dl, int D, int pix, int co, int by_channel, const int* map,
                         int* cnt, int* idx, float* val) {
  const size_t dstride = (size_t)pix * co, ls = sparse_stride(pix);
  memset(cnt, 0, (size_t)(by_channel ? co : pix) * sizeof(int));
#if defined(__AVX512F__)
  if (D == 1 && by_channel) {
    // blocks of 16 positions × 16 channels, transposed: each channel's nonzeros among the 16
    // positions compressed into its list (scattering pair by pair into 64 lists at once took a
    // sixth of a W3g batch at h = 64)
    for (int p0 = 0; p0 < pix; p0 += 16) {
      const int pn = pix - p0 < 16 ? pix - p0 : 16;
      const __mmask16 pm = (__mmask16)((1u << pn) - 1);
      const __m512i where = _mm512_maskz_loadu_epi32(pm, map + p0);
      for (int c0 = 0; c0 < co; c0 += 16) {
        const int cn = co - c0 < 16 ? co - c0 : 16;
        const __mmask16 cm = (__mmask16)((1u << cn) - 1);
        __m512 r[16];
        for (int i = 0; i < 16; i++)
          r[i] = i < pn ? _mm512_maskz_loadu_ps(cm, dl + (size_t)(p0 + i) * co + c0)
                        : _mm512_setzero_ps();
        transpose16(r);  // r[l]: channel c0 + l at positions p0 …
        for (int l = 0; l < cn; l++) {
          const __mmask16 k = _mm512_mask_cmp_ps_mask(pm, r[l], _mm512_setzero_ps(), _CMP_NEQ_UQ);
          const int c = c0 + l, j = cnt[c];
          _mm512_storeu_ps(val + c * ls + j, _mm512_maskz_compress_ps(k, r[l]));
          _mm512_storeu_si512(idx + c * ls + j, _mm512_maskz_compress_epi32(k, where));
          cnt[c] = j + __builtin_popcount(k);
        }
      }
    }
    return;
  }
  if (D == 1) {  // by position: each position's nonzero channels compressed into its list
    for (int p = 0; p < pix; p++) {
      const float* at = dl + (size_t)p * co;
      int m = 0;
      for (int c0 = 0; c0 < co; c0 += 16) {
        const int cn = co - c0 < 16 ? co - c0 : 16;
        const __mmask16 cm = (__mmask16)((1u << cn) - 1);
        const __m512 v = _mm512_maskz_loadu_ps(cm, at + c0);
        const __mmask16 k = _mm512_mask_cmp_ps_mask(cm, v, _mm512_setzero_ps(), _CMP_NEQ_UQ);
        const __m512i chan = _mm512_add_epi32(_mm512_set1_epi32(c0),
                                              _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10,
                                                                11, 12, 13, 14, 15));
        _mm512_storeu_ps(val + (size_t)p * co + m, _mm512_maskz_compress_ps(k, v));
        _mm512_storeu_si512(idx + (size_t)p * co + m, _mm512_maskz_compress_epi32(k, chan));
        m += __builtin_popcount(k);
      }
      cnt[p] = m;
    }
    return;
  }
#endif
  for (int p = 0; p < pix; p++) {
    const float* at = dl + (size_t)p * co;
    for (int c0 = 0; c0 < co; c0 += 16) {
      const int cn = co - c0 < 16 ? co - c0 : 16;
      for (unsigned live = live_channels(at + c0, dstride, D, cn); live; live &= live - 1) {
        const int c = c0 + __builtin_ctz(live);
        const int j = by_channel ? cnt[c]++ : cnt[p]++;
        const size_t slot = by_channel ? c * ls + j : (size_t)p * co + j;
        idx[slot] = by_channel ? map[p] : c;
        float* v = val + slot * D;
        for (int d = 0; d < D; d++) v[d] = at[d * dstride + c];
      }
    }
  }
}

// A max-pool above a conv layer, as the source of the layer's lists (pooled_lists): one example.
typedef struct {
  const float* z;   // the pool's input, i.e. the layer's output [oh, ow, co]
  const float* dy;  // the pool's output gradient, D directions [D][ph][pw][co]
  int ph, pw;       // the pool's output
  int kh, kw, sh, sw, pt, pl;
  int positive;     // only a window maximum above 0 passes a gradient (the layer's ReLU)
} pool_src_t;

// The layer-output positions (iy·ow + ix) a pool window covers, in scan order; returns how many.
static int window_pixels(const pool_src_t* s, int oh, int ow, int cell, int* pix) {
  const int y0 = cell / s->pw * s->sh - s->pt, x0 = cell % s->pw * s->sw - s->pl;
  int n = 0;
  for (int ky = 0; ky < s->kh; ky++)
    for (int kx = 0; kx < s->kw; kx++) {
      const int iy = y0 + ky, ix = x0 + kx;
      if (iy >= 0 && iy < oh && ix >= 0 && ix < ow) pix[n++] = iy * ow + ix;
    }
  return n;
}

// The by-channel lists of one example (as sparse_lists builds them from dense deltas), read from
// the gradient of a max-pool above the layer: each window's winner in z — by the max-pool
// gradient's rule: the first strictly greatest value, never -inf or NaN, with `positive` only a
// maximum above 0 — is listed with the window's D values when one of them is nonzero (or NaN).
// The layer's dense deltas (W3g's first layer at h = 64: 7.9 MB a batch, mostly zeros) are never
// written or read, and the lists take one pass over ph·pw windows instead of oh·ow positions.
// Positions ascend in a channel's list only for disjoint windows in scan order; the sums do not
// need it. Overlapping windows may list a position twice: their gradients add, as they should.
static void pooled_lists(const pool_src_t* s, int D, int oh, int ow, int co, const int* map, int* cnt,
                         int* idx, float* val) {
  const int cells = s->ph * s->pw;
  const size_t ls = sparse_stride(oh * ow), dstride = (size_t)cells * co;
  int pix[s->kh * s->kw];
  memset(cnt, 0, (size_t)co * sizeof(int));
#if defined(__AVX512F__)
  // blocks of 16 windows × 16 channels: each lane's winner and value, then (D = 1) transposed
  // and compressed into the channels' lists as in sparse_lists. A window's pixels are read for up
  // to 8 channel groups at a time (contiguous runs of z; channel group by group outside the
  // window loop, the reads of z missed the cache on most of a W3g batch's list time)
  enum { GROUPS = 8, PREFETCH_WINDOWS = 4 };
  for (int w0 = 0; w0 < cells; w0 += 16) {
    const int wn = cells - w0 < 16 ? cells - w0 : 16;
    const __mmask16 wm = (__mmask16)((1u << wn) - 1);
    for (int cg = 0; cg < co; cg += GROUPS * 16) {
      const int gn = (co - cg + 15) / 16 < GROUPS ? (co - cg + 15) / 16 : GROUPS;
      __m512 r[GROUPS][16], where[GROUPS][16];
      for (int i = 0; i < 16; i++) {
        for (int q = 0; q < gn; q++) r[q][i] = where[q][i] = _mm512_setzero_ps();
        if (i >= wn) continue;
        const int cell = w0 + i, npos = window_pixels(s, oh, ow, cell, pix);
        for (int q = 0; q < gn; q++) {
          const int c0 = cg + 16 * q, cn = co - c0 < 16 ? co - c0 : 16;
          const __mmask16 cm = (__mmask16)((1u << cn) - 1);
          __m512 m = _mm512_set1_ps(-INFINITY);
          for (int k = 0; k < npos; k++) {
            const float* zp = s->z + (size_t)pix[k] * co + c0;
            _mm_prefetch((const char*)(zp + PREFETCH_WINDOWS * s->sw * co), _MM_HINT_T0);
            const __m512 v = _mm512_maskz_loadu_ps(cm, zp);
            m = _mm512_mask_mov_ps(m, _mm512_cmp_ps_mask(v, m, _CMP_GT_OQ), v);
          }
          __mmask16 open = _mm512_mask_cmp_ps_mask(
              cm, m, s->positive ? _mm512_setzero_ps() : _mm512_set1_ps(-INFINITY), _CMP_GT_OQ);
          const __mmask16 found = open;
          __m512i at = _mm512_setzero_si512();
          for (int k = 0; k < npos && open; k++) {
            const __m512 v = _mm512_maskz_loadu_ps(cm, s->z + (size_t)pix[k] * co + c0);
            const __mmask16 takes = _mm512_mask_cmp_ps_mask(open, v, m, _CMP_EQ_OQ);
            at = _mm512_mask_mov_epi32(at, takes, _mm512_set1_epi32(map[pix[k]]));
            open &= (__mmask16)~takes;
          }
          const float* g = s->dy + (size_t)cell * co + c0;
          if (D == 1) {
            const __m512 v = _mm512_maskz_loadu_ps(found, g);
            r[q][i] = _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(v, _mm512_setzero_ps(), _CMP_NEQ_UQ), v);
            where[q][i] = _mm512_castsi512_ps(at);
            continue;
          }
          __mmask16 live = 0;
          for (int d = 0; d < D; d++)
            live |= _mm512_mask_cmp_ps_mask(found, _mm512_maskz_loadu_ps(found, g + d * dstride),
                                            _mm512_setzero_ps(), _CMP_NEQ_UQ);
          int ats[16];
          _mm512_storeu_si512(ats, at);
          for (unsigned k = live; k; k &= k - 1) {
            const int l = __builtin_ctz(k), c = c0 + l, j = cnt[c]++;
            idx[c * ls + j] = ats[l];
            float* v = val + (c * ls + j) * D;
            for (int d = 0; d < D; d++) v[d] = g[d * dstride + l];
          }
        }
      }
      if (D != 1) continue;
      for (int q = 0; q < gn; q++) {
        const int c0 = cg + 16 * q, cn = co - c0 < 16 ? co - c0 : 16;
        transpose16(r[q]);  // r[q][l]: channel c0 + l in windows w0 …
        transpose16(where[q]);
        for (int l = 0; l < cn; l++) {
          const __mmask16 k = _mm512_mask_cmp_ps_mask(wm, r[q][l], _mm512_setzero_ps(), _CMP_NEQ_UQ);
          const int c = c0 + l, j = cnt[c];
          _mm512_storeu_ps(val + c * ls + j, _mm512_maskz_compress_ps(k, r[q][l]));
          _mm512_storeu_si512(idx + c * ls + j,
                              _mm512_maskz_compress_epi32(k, _mm512_castps_si512(where[q][l])));
          cnt[c] = j + __builtin_popcount(k);
        }
      }
    }
  }
#else
  for (int cell = 0; cell < cells; cell++) {
    const int npos = window_pixels(s, oh, ow, cell, pix);
    const float* g = s->dy + (size_t)cell * co;
    for (int c = 0; c < co; c++) {
      float best = -INFINITY;
      int win = -1;
      for (int q = 0; q < npos; q++) {
        const float v = s->z[(size_t)pix[q] * co + c];
        if (v > best) { best = v; win = pix[q]; }
      }
      if (win < 0 || (s->positive && !(best > 0.f))) continue;
      int live = 0;
      for (int d = 0; d < D; d++) live |= g[d * dstride + c] != 0.f || g[d * dstride + c] != g[d * dstride + c];
      if (!live) continue;
      const int j = cnt[c]++;
      idx[c * ls + j] = map[win];
      for (int d = 0; d < D; d++) val[(c * ls + j) * D + d] = g[d * dstride + c];
    }
  }
#endif
}

// The fraction of listed pairs in (up to) four examples spread over the batch: the choice between
// the sparse and the dense kernels, made once per call from the inputs alone.
static double sparse_density(const float* delta, int n, int D, int pix, int co) {
  long pairs = 0, all = 0;
  const int step = n > 4 ? n / 4 : 1;
  for (int i = 0; i < n && all < 4L * pix * co; i += step) {
    const float* dl = delta + (size_t)i * D * pix * co;
    for (int p = 0; p < pix; p++)
      for (int c0 = 0; c0 < co; c0 += 16) {
        const int cn = co - c0 < 16 ? co - c0 : 16;
        pairs += __builtin_popcount(live_channels(dl + (size_t)p * co + c0, (size_t)pix * co, D, cn));
      }
    all += (long)pix * co;
  }
  return all ? (double)pairs / all : 1.0;
}

// s[d·ss + r·VL + ·] = Σ_j a_j[off + r·VL + ·] · v_j[d0 + d] for r < R, d < DT: one register tile
// per list, R vectors of a row (filter taps or input channels) by DT directions. Small tiles keep
// NS accumulator sets (alternate list entries) to hide the FMA latency.
#define SPARSE_TILE(R, DT)                                                                      \
  static void sparse_tile_##R##_##DT(int n, const float* const* ap, const float* const* vp,     \
                                     int off, int d0, float* s, size_t ss) {                    \
    enum { NS = R * DT >= 8 ? 1 : R * DT >= 4 ? 2 : 4 };                                        \
    vf acc[NS][R][DT];                                                                          \
    for (int q = 0; q < NS; q++)                                                                \
      for (int r = 0; r < R; r++)                                                               \
        for (int d = 0; d < DT; d++) acc[q][r][d] = (vf){0};                                    \
    int j = 0;                                                                                  \
    for (; j + NS <= n; j += NS)                                                                \
      for (int q = 0; q < NS; q++) {                                                            \
        const float* a = ap[j + q] + off;                                                       \
        const float* v = vp[j + q] + d0;                                                        \
        vf x[R];                                                                                \
        for (int r = 0; r < R; r++) memcpy(&x[r], a + r * VL, sizeof(vf));                      \
        for (int d = 0; d < DT; d++) {                                                          \
          const vf b = (vf){0} + v[d];                                                          \
          for (int r = 0; r < R; r++) acc[q][r][d] += x[r] * b;                                 \
        }                                                                                       \
      }                                                                                         \
    for (; j < n; j++) {                                                                        \
      const float* a = ap[j] + off;                                                             \
      const float* v = vp[j] + d0;                                                              \
      for (int r = 0; r < R; r++) {                                                             \
        vf x;                                                                                   \
        memcpy(&x, a + r * VL, sizeof(vf));                                                     \
        for (int d = 0; d < DT; d++) acc[0][r][d] += x * ((vf){0} + v[d]);                      \
      }                                                                                         \
    }                                                                                           \
    for (int q = 1; q < NS; q++)                                                                \
      for (int r = 0; r < R; r++)                                                               \
        for (int d = 0; d < DT; d++) acc[0][r][d] += acc[q][r][d];                              \
    for (int d = 0; d < DT; d++)                                                                \
      for (int r = 0; r < R; r++) memcpy(s + d * ss + r * VL, &acc[0][r][d], sizeof(vf));       \
  }
SPARSE_TILE(1, 10)
SPARSE_TILE(2, 10)
SPARSE_TILE(1, 5)
SPARSE_TILE(2, 5)
SPARSE_TILE(4, 5)
SPARSE_TILE(1, 2)
SPARSE_TILE(2, 2)
SPARSE_TILE(4, 2)
SPARSE_TILE(8, 2)
SPARSE_TILE(1, 1)
SPARSE_TILE(2, 1)
SPARSE_TILE(4, 1)
SPARSE_TILE(8, 1)

// s[t·C + ·] = Σ_j a_j[t·ts + ·] · v_j[0] for t < T: T taps of a kernel row of C ≤ VL values,
// one direction, in one pass over the list. A pass per tap (the tiles above) spent two pointer
// loads and a broadcast on each multiply-add of a first layer's short rows. Tap t's vector is
// stored at t·C: its lanes past C are overwritten by tap t + 1's, the last tap's fall in slack.
#define SPARSE_TAPS(T)                                                                          \
  static void sparse_taps_##T(int n, const float* const* ap, const float* const* vp, int ts,    \
                              int C, float* s) {                                                \
    enum { NS = T >= 8 ? 1 : 2 };                                                               \
    vf acc[NS][T];                                                                              \
    for (int q = 0; q < NS; q++)                                                                \
      for (int t = 0; t < T; t++) acc[q][t] = (vf){0};                                          \
    int j = 0;                                                                                  \
    for (; j + NS <= n; j += NS)                                                                \
      for (int q = 0; q < NS; q++) {                                                            \
        const float* a = ap[j + q];                                                             \
        const vf b = (vf){0} + vp[j + q][0];                                                    \
        for (int t = 0; t < T; t++) {                                                           \
          vf x;                                                                                 \
          memcpy(&x, a + t * ts, sizeof(vf));                                                   \
          acc[q][t] += x * b;                                                                   \
        }                                                                                       \
      }                                                                                         \
    for (; j < n; j++) {                                                                        \
      const vf b = (vf){0} + vp[j][0];                                                          \
      for (int t = 0; t < T; t++) {                                                             \
        vf x;                                                                                   \
        memcpy(&x, ap[j] + t * ts, sizeof(vf));                                                 \
        acc[0][t] += x * b;                                                                     \
      }                                                                                         \
    }                                                                                           \
    for (int q = 1; q < NS; q++)                                                                \
      for (int t = 0; t < T; t++) acc[0][t] += acc[q][t];                                       \
    for (int t = 0; t < T; t++) memcpy(s + t * C, &acc[0][t], sizeof(vf));                      \
  }
SPARSE_TAPS(1)
SPARSE_TAPS(2)
SPARSE_TAPS(3)
SPARSE_TAPS(4)
SPARSE_TAPS(5)
SPARSE_TAPS(6)
SPARSE_TAPS(7)
SPARSE_TAPS(8)

typedef void (*sparse_taps_fn)(int, const float* const*, const float* const*, int, int, float*);
static const sparse_taps_fn SPARSE_TAPS_FNS[8] = {sparse_taps_1, sparse_taps_2, sparse_taps_3,
                                                  sparse_taps_4, sparse_taps_5, sparse_taps_6,
                                                  sparse_taps_7, sparse_taps_8};

typedef void (*sparse_tile_fn)(int, const float* const*, const float* const*, int, int, float*,
                               size_t);

// Directions per tile for the dw directions left: 10, 5, 2 or 1.
static int sparse_dirs(int left) { return left >= 10 ? 10 : left >= 5 ? 5 : left >= 2 ? 2 : 1; }

// Vectors per tile row for dt directions (at most 20 accumulators).
static int sparse_rows_max(int dt) { return dt >= 10 ? 2 : dt >= 5 ? 4 : 8; }

// The tile of dt directions (from sparse_dirs) and at least `rows` vectors (at most
// sparse_rows_max(dt)); *got is its vector count.
static sparse_tile_fn sparse_tile(int dt, int rows, int* got) {
  const int r = rows <= 1 ? 1 : rows <= 2 ? 2 : rows <= 4 ? 4 : 8;
  *got = r;
  switch (dt) {
    case 10: return r == 1 ? sparse_tile_1_10 : sparse_tile_2_10;
    case 5: return r == 1 ? sparse_tile_1_5 : r == 2 ? sparse_tile_2_5 : sparse_tile_4_5;
    case 2:
      return r == 1 ? sparse_tile_1_2 : r == 2 ? sparse_tile_2_2 : r == 4 ? sparse_tile_4_2 : sparse_tile_8_2;
    default:
      return r == 1 ? sparse_tile_1_1 : r == 2 ? sparse_tile_2_1 : r == 4 ? sparse_tile_4_1 : sparse_tile_8_1;
  }
}

// The tile for dt directions and the `left` values of a row from some offset on: as many vectors
// as cover them, at most sparse_rows_max(dt); *kn: how many values it covers.
static sparse_tile_fn sparse_tile_for(int dt, int left, int* kn) {
  int rows;
  const int want = (left + VL - 1) / VL, most = sparse_rows_max(dt);
  const sparse_tile_fn fn = sparse_tile(dt, want < most ? want : most, &rows);
  *kn = left < rows * VL ? left : rows * VL;
  return fn;
}

// Per-thread scratch of the sparse kernels.
static float* g_sp_list[MAX_THREADS];  // cnt, idx (int) and val of one example
static size_t g_sp_lcap[MAX_THREADS];
static float* g_sp_ptrs[MAX_THREADS];  // tile list pointers (two float slots per pointer)
static size_t g_sp_pcap[MAX_THREADS];
static float* g_sp_tile[MAX_THREADS];  // filter gradient: a tile group's results before transposing
static size_t g_sp_tcap[MAX_THREADS];
static float* g_sp_x[MAX_THREADS];     // filter gradient: the example's input, with slack for tiles
static size_t g_sp_xcap[MAX_THREADS];
static float* g_sp_wt;                 // input gradient: the filter as [co][kh][kw·ci]
static size_t g_sp_wtcap;

enum { SPARSE_GROUP = 16 };  // output channels transposed together (filter gradient)

// One thread's scratch: the lists (counts, indices, values), a second index per pair, and
// ptr_entries pointer pairs for the tiles.
typedef struct {
  int *cnt, *idx, *idx2;
  float* val;
  const float **ap, **vp;
} sparse_scratch_t;

static int sparse_scratch(int tid, int pix, int co, int D, size_t ptr_entries, sparse_scratch_t* s) {
  // room for either layout, and for a vector written past the last list's end
  const size_t pairs = (size_t)sparse_stride(pix) * co, counts = (size_t)(pix > co ? pix : co);
  float* l = grow(&g_sp_list[tid], &g_sp_lcap[tid], counts + 2 * pairs + pairs * D);
  float* p = grow(&g_sp_ptrs[tid], &g_sp_pcap[tid], 4 * ptr_entries);
  if (!l || !p) return 0;
  s->cnt = (int*)l;
  s->idx = (int*)(l + counts);
  s->idx2 = (int*)(l + counts + pairs);
  s->val = l + counts + 2 * pairs;
  s->ap = (const float**)p;
  s->vp = (const float**)(p + 2 * ptr_entries);
  return 1;
}

// The per-example filter gradients of one example over its listed pairs: row d of out (stride P)
// gets [kh][kw][ci][co] at koff (and the bias at boff ≥ 0). The example's input is copied with
// its padding written out, so every tap of a pair reads the copy in bounds and a kernel row is
// one contiguous run of kw·ci values (for unit column stride and dilation): the pointers are built
// once per pair, not per tap.
static void pe_conv_sparse(const conv_t* g, const float* dl, const pool_src_t* pool, int D, int co,
                           float* out, long P, long koff, long boff, int tid) {
  const int pix = g->oh * g->ow, ci = g->c;
  const int bottom = (g->oh - 1) * g->sh + (g->kh - 1) * g->dh + 1 - g->pt - g->h;
  const int right = (g->ow - 1) * g->sw + (g->kw - 1) * g->dw + 1 - g->pl - g->w;
  const int hp = g->h + g->pt + (bottom > 0 ? bottom : 0);
  const int wp = g->w + g->pl + (right > 0 ? right : 0);
  const int rows_run = g->sw == 1 && g->dw == 1;  // kernel rows are contiguous in the copy
  const int C = rows_run ? g->kw * ci : ci, taps = rows_run ? g->kh : g->kh * g->kw;
  const int span = rows_run ? 1 : g->kw;
  const int cw_max = 8 * VL;
  const size_t xn = (size_t)hp * wp * ci;
  sparse_scratch_t sc;
  float* x = grow(&g_sp_x[tid], &g_sp_xcap[tid], xn + cw_max);
  float* tile = grow(&g_sp_tile[tid], &g_sp_tcap[tid], (size_t)10 * SPARSE_GROUP * cw_max);
  const size_t ls = sparse_stride(pix);
  if (!x || !tile || !sparse_scratch(tid, pix, co, D, (size_t)co * ls, &sc)) return;
  // the copy; a tile reads whole vectors, so a row's last one may pass its end into the slack
  memset(x, 0, (xn + cw_max) * sizeof(float));
  for (int y = 0; y < g->h; y++)
    memcpy(x + ((size_t)(y + g->pt) * wp + g->pl) * ci, g->x + (size_t)y * g->w * ci,
           (size_t)g->w * ci * sizeof(float));
  const int *cnt = sc.cnt, *at = sc.idx;
  const float* val = sc.val;
  const float **ap = sc.ap, **vp = sc.vp;
  int* origin = sc.idx2;  // each output position's window origin in the copy
  for (int oy = 0, p = 0; oy < g->oh; oy++)
    for (int ox = 0; ox < g->ow; ox++) origin[p++] = (oy * g->sh * wp + ox * g->sw) * ci;
  if (pool)
    pooled_lists(pool, D, g->oh, g->ow, co, origin, sc.cnt, sc.idx, sc.val);
  else
    sparse_lists(dl, D, pix, co, 1, origin, sc.cnt, sc.idx, sc.val);
  for (int c = 0; c < co; c++)
    for (int j = 0; j < cnt[c]; j++) {
      const size_t e = c * ls + j;
      ap[e] = x + at[e];
      vp[e] = val + e * D;
    }
  const size_t ss = (size_t)SPARSE_GROUP * cw_max;  // tile[d][channel in group][k]
  if (rows_run && D == 1 && C <= VL && taps <= 8) {
    // all taps in one pass over each list: taps·C ≤ cw_max consecutive values of the block
    const sparse_taps_fn fn = SPARSE_TAPS_FNS[taps - 1];
    const int kn = taps * C;
    for (int c0 = 0; c0 < co; c0 += SPARSE_GROUP) {
      const int gn = co - c0 < SPARSE_GROUP ? co - c0 : SPARSE_GROUP;
      for (int cl = 0; cl < gn; cl++) {
        const size_t e = (c0 + cl) * ls;
        fn(cnt[c0 + cl], ap + e, vp + e, g->dh * wp * ci, C, tile + (size_t)cl * cw_max);
      }
      float* dst = out + koff + c0;
      for (int kb = 0; kb < kn; kb += 16)
        transpose_block(tile + kb, cw_max, gn, dst + (size_t)kb * co, co, kn - kb < 16 ? kn - kb : 16);
    }
  }
  for (int t = 0; t < taps && !(rows_run && D == 1 && C <= VL && taps <= 8); t++) {
    const int ky = t / span, kx = t % span;
    const int toff = (ky * g->dh * wp + kx * g->dw) * ci;
    for (int c0 = 0; c0 < co; c0 += SPARSE_GROUP) {
      const int gn = co - c0 < SPARSE_GROUP ? co - c0 : SPARSE_GROUP;
      for (int d0 = 0; d0 < D;) {
        const int dt = sparse_dirs(D - d0);
        for (int k0 = 0; k0 < C;) {
          int kn;
          const sparse_tile_fn fn = sparse_tile_for(dt, C - k0, &kn);
          for (int cl = 0; cl < gn; cl++) {
            const size_t e = (c0 + cl) * ls;
            fn(cnt[c0 + cl], ap + e, vp + e, toff + k0, d0, tile + (size_t)cl * cw_max, ss);
          }
          for (int d = 0; d < dt; d++) {
            float* dst = out + (size_t)(d0 + d) * P + koff + ((size_t)t * C + k0) * co + c0;
            for (int kb = 0; kb < kn; kb += 16)
              transpose_block(tile + d * ss + kb, cw_max, gn, dst + (size_t)kb * co, co,
                              kn - kb < 16 ? kn - kb : 16);
          }
          k0 += kn;
        }
        d0 += dt;
      }
    }
  }
  if (boff < 0) return;
  for (int d = 0; d < D; d++) {
    float* b = out + (size_t)d * P + boff;
    for (int c = 0; c < co; c++) {
      float s = 0.f;
      for (int j = 0; j < cnt[c]; j++) s += val[(c * ls + j) * D + d];
      b[c] = s;
    }
  }
}

static float* g_sp_dx[MAX_THREADS];  // input gradient: one example's padded result, D directions
static size_t g_sp_dxcap[MAX_THREADS];

// Input gradient for D directions per example: dy [n·D, oh, ow, co], f [kh, kw, ci, co],
// dx [n·D, h, w, ci]. Over the listed pairs of each example's dy (above) for a stride-1,
// undilated convolution: each pair (position, channel) adds its filter slice times its D values
// to the input window it reads, a kernel row at a time (kw·ci contiguous values of a copy with
// the padding written out); the dense kernel otherwise. Returns 1 if the sparse kernel ran.
int gl_conv2d_backprop_input_dirs(const float* dy, const float* f, float* dx, int D, int n, int h,
                                  int w, int ci, int kh, int kw, int co, int oh, int ow, int sh,
                                  int sw, int dh, int dw, int pt, int pl) {
  SERIALIZED;
  const int pix = oh * ow, row = kw * ci;
  if (sh != 1 || sw != 1 || dh != 1 || dw != 1 || n <= 0 || row * D < SPARSE_MIN_WORK ||
      sparse_density(dy, n, D, pix, co) > SPARSE_MAX_DENSITY) {
    backprop_input(dy, f, dx, n * D, h, w, ci, kh, kw, co, oh, ow, sh, sw, dh, dw, pt, pl, 0);
    return 0;
  }
  const int hp = oh + kh - 1, wp = ow + kw - 1;  // the padded input the windows read
  const size_t pimg = (size_t)hp * wp * ci, img = (size_t)h * w * ci;
  const int cw_max = 8 * VL;
  // the filter as [co][kh][kw·ci]: a pair's kernel rows, contiguous
  float* wt = grow(&g_sp_wt, &g_sp_wtcap, (size_t)kh * row * co + cw_max);
  if (!wt) return 1;
  for (int t = 0; t < kh * kw; t++)
    for (int i = 0; i < ci; i++)
      for (int c = 0; c < co; c++) wt[((size_t)c * kh * kw + t) * ci + i] = f[((size_t)t * ci + i) * co + c];
  memset(wt + (size_t)kh * row * co, 0, cw_max * sizeof(float));
#pragma omp parallel for schedule(dynamic, 1) num_threads(g_threads)
  for (int b = 0; b < n; b++) {
    const int tid = thread_id();
    sparse_scratch_t sc;
    float* acc = grow(&g_sp_dx[tid], &g_sp_dxcap[tid], (size_t)D * pimg);
    float* tile = grow(&g_sp_tile[tid], &g_sp_tcap[tid], (size_t)10 * SPARSE_GROUP * cw_max);
    if (!acc || !tile || !sparse_scratch(tid, pix, co, D, (size_t)co * pix, &sc)) continue;
    memset(acc, 0, (size_t)D * pimg * sizeof(float));
    sparse_lists(dy + (size_t)b * D * pix * co, D, pix, co, 0, NULL, sc.cnt, sc.idx, sc.val);
    for (int p = 0; p < pix; p++) {
      const int m = sc.cnt[p];
      if (!m) continue;
      const float** ap = sc.ap + (size_t)p * co;
      const float** vp = sc.vp + (size_t)p * co;
      for (int j = 0; j < m; j++) {
        const size_t e = (size_t)p * co + j;
        ap[j] = wt + (size_t)sc.idx[e] * kh * row;
        vp[j] = sc.val + e * D;
      }
      const int oy = p / ow, ox = p % ow;
      for (int ky = 0; ky < kh; ky++) {
        float* arow = acc + ((size_t)(oy + ky) * wp + ox) * ci;  // padded input row oy + ky
        for (int d0 = 0; d0 < D;) {
          const int dt = sparse_dirs(D - d0);
          for (int k0 = 0; k0 < row;) {
            int kn;
            const sparse_tile_fn fn = sparse_tile_for(dt, row - k0, &kn);
            fn(m, ap, vp, ky * row + k0, d0, tile, cw_max);
            for (int d = 0; d < dt; d++) {
              float* a = arow + (size_t)(d0 + d) * pimg + k0;
              const float* s = tile + (size_t)d * cw_max;
              for (int k = 0; k < kn; k++) a[k] += s[k];
            }
            k0 += kn;
          }
          d0 += dt;
        }
      }
    }
    for (int d = 0; d < D; d++)  // crop the padding
      for (int y = 0; y < h; y++)
        memcpy(dx + ((size_t)b * D + d) * img + (size_t)y * w * ci,
               acc + (size_t)d * pimg + ((size_t)(y + pt) * wp + pl) * ci, (size_t)w * ci * sizeof(float));
  }
  return 1;
}

// ---------------------------------------------------------------------------------------------
// Per-example weight gradients written straight into the rows of a [rows, P] matrix: row
// r = i·D + dd holds example i's gradient for seed direction dd. Each layer's block uses its
// TF.js weight layout: conv kernel [kh][kw][ci][co], dense kernel [in][out], biases [out].

static float* g_pe_dirs[MAX_THREADS];  // one example's deltas, all directions side by side
static size_t g_pe_dcap[MAX_THREADS];
static float* g_pe_res[MAX_THREADS];  // its filter gradients [K, D·co] before they are scattered
static float* g_pe_pad[MAX_THREADS];  // one example's input with its column padding written out
static size_t g_pe_padcap[MAX_THREADS];
static size_t g_pe_rcap[MAX_THREADS];

// Conv layer: x [n, h, w, ci] (the layer's input), delta [n·D, oh, ow, co]. Each (example,
// direction) is the filter gradient of a batch of one, computed by the same in-place kernels as
// Conv2DBackpropFilter, into its row block.
int gl_pe_conv(const float* x, const float* delta, float* out, int n, int h, int w, int ci, int kh,
                int kw, int co, int oh, int ow, int sh, int sw, int pt, int pl, int D, long P,
                long koff, long boff) {
  SERIALIZED;
  const int pix = oh * ow;
  const long pairs = (long)n * D;
  const int K = kh * kw * ci, N = D * co;
  if (n > 0 && (sw == 1 ? kw * ci : ci) * D >= SPARSE_MIN_WORK &&
      sparse_density(delta, n, D, pix, co) <= SPARSE_MAX_DENSITY) {
#pragma omp parallel for schedule(dynamic, 1) num_threads(g_threads)
    for (int i = 0; i < n; i++) {
      int tid = thread_id();
      conv_t g = {x + (size_t)i * h * w * ci, 1, h, w, ci, kh, kw, oh, ow, sh, sw, 1, 1, pt, pl, 1, 1};
      pe_conv_sparse(&g, delta + (size_t)i * D * pix * co, NULL, D, co, out + (size_t)i * D * P, P,
                     koff, boff, tid);
    }
    return 1;
  }
  if (D > 1 && n >= 2 * g_threads) {
    // All D directions of an example in one product patchesᵀ [K, pix] · [pix, D·co]: one pass
    // over the patches instead of D, and panels D times wider than a layer of co channels fills
    // (W3g's 10-label rows: 89 → see README), then scattered into the D rows.
    if (!zeros_of((size_t)kw * ci + MR)) return 0;
    for (int t = 0; t < g_threads; t++) {
      if (!grow(&g_pe_dirs[t], &g_pe_dcap[t], (size_t)pix * N) ||
          !grow(&g_pe_res[t], &g_pe_rcap[t], (size_t)K * N))
        return 0;
    }
#pragma omp parallel for schedule(dynamic, 1) num_threads(g_threads)
    for (int i = 0; i < n; i++) {
      int tid = thread_id();
      conv_t g = {x + (size_t)i * h * w * ci, 1, h, w, ci, kh, kw, oh, ow, sh, sw, 1, 1, pt, pl, 1, 1};
      if (rows_after_padding(&g) && !pad_columns(&g, &g_pe_pad[tid], &g_pe_padcap[tid], &g)) continue;
      const float* dl = delta + (size_t)i * D * pix * co;
      float* dirs = g_pe_dirs[tid];
      float* res = g_pe_res[tid];
      for (int p = 0; p < pix; p++)
        for (int d = 0; d < D; d++)
          memcpy(dirs + (size_t)p * N + (size_t)d * co, dl + ((size_t)d * pix + p) * co,
                 (size_t)co * sizeof(float));
      if (ci >= FILTER_INDIRECT_MIN_CHANNELS || kernel_rows_contiguous(&g)) {
        filter_grad_range(&g, dirs, N, 0, pix, res, tid);
      } else {
        matrix_t B = {dirs, N, 0};
        gemm(K, N, pix, pack_a_conv_t, &g, pack_b_matrix, &B, res, N, 0, NULL, 1);
      }
      for (int d = 0; d < D; d++) {
        float* row = out + ((size_t)i * D + d) * P;
        for (int k = 0; k < K; k++)
          memcpy(row + koff + (size_t)k * co, res + (size_t)k * N + (size_t)d * co,
                 (size_t)co * sizeof(float));
        if (boff >= 0) {
          float* b = row + boff;
          const float* dd = dl + (size_t)d * pix * co;
          for (int c = 0; c < co; c++) b[c] = 0.f;
          for (int p = 0; p < pix; p++)
            for (int c = 0; c < co; c++) b[c] += dd[(size_t)p * co + c];
        }
      }
    }
    return 0;
  }
  if (!zeros_of((size_t)kw * ci + MR)) return 0;  // grown before the threads read it
#pragma omp parallel num_threads(g_threads)
  {
    int tid = thread_id();
#pragma omp for schedule(dynamic, 1)
    for (long r = 0; r < pairs; r++) {
      long i = r / D;
      conv_t g = {x + (size_t)i * h * w * ci, 1, h, w, ci, kh, kw, oh, ow, sh, sw, 1, 1, pt, pl, 1, 1};
      if (rows_after_padding(&g) && !pad_columns(&g, &g_pe_pad[tid], &g_pe_padcap[tid], &g)) continue;
      const float* dl = delta + (size_t)r * pix * co;
      float* row = out + (size_t)r * P;
      if (ci >= FILTER_INDIRECT_MIN_CHANNELS || kernel_rows_contiguous(&g)) {
        filter_grad_range(&g, dl, co, 0, pix, row + koff, tid);
      } else {
        matrix_t B = {dl, co, 0};
        gemm(kh * kw * ci, co, pix, pack_a_conv_t, &g, pack_b_matrix, &B, row + koff, co, 0, NULL, 1);
      }
      if (boff >= 0) {
        float* b = row + boff;
        for (int c = 0; c < co; c++) b[c] = 0.f;
        for (int p = 0; p < pix; p++)
          for (int c = 0; c < co; c++) b[c] += dl[(size_t)p * co + c];
      }
    }
  }
  return 0;
}

// Conv layer with a max-pool above it: x [n, h, w, ci] (the layer's input), z [n, oh, ow, co]
// (the layer's output, the pool's input) and the pool's output gradient dyp [n·D, ph, pw, co].
// The sparse kernel above over lists built from the pool's winners (pooled_lists): the layer's
// dense deltas are never formed. For a layer whose deltas nothing else reads (the first weight
// layer: no input gradient) and whose activation the pool's rule covers (linear, or a ReLU with
// `positive`).
void gl_pe_conv_pooled(const float* x, const float* z, const float* dyp, float* out, int n, int h,
                       int w, int ci, int kh, int kw, int co, int oh, int ow, int sh, int sw, int pt,
                       int pl, int ph, int pw, int pkh, int pkw, int psh, int psw, int ppt, int ppl,
                       int positive, int D, long P, long koff, long boff) {
  SERIALIZED;
#pragma omp parallel for schedule(dynamic, 1) num_threads(g_threads)
  for (int i = 0; i < n; i++) {
    const conv_t g = {x + (size_t)i * h * w * ci, 1, h, w, ci, kh, kw, oh, ow, sh, sw, 1, 1, pt, pl, 1, 1};
    const pool_src_t pool = {z + (size_t)i * oh * ow * co, dyp + (size_t)i * D * ph * pw * co, ph, pw,
                             pkh, pkw, psh, psw, ppt, ppl, positive};
    pe_conv_sparse(&g, NULL, &pool, D, co, out + (size_t)i * D * P, P, koff, boff, thread_id());
  }
}

// Dense layer: a [n, in], delta [n·D, outc]; kernel block [in][out] = a ⊗ delta.
void gl_pe_dense(const float* a, const float* delta, float* out, int n, int in, int outc, int D,
                 long P, long koff, long boff) {
  SERIALIZED;
  const long rows = (long)n * D;
#pragma omp parallel for schedule(static) num_threads(g_threads)
  for (long r = 0; r < rows; r++) {
    const float* ar = a + (size_t)(r / D) * in;
    const float* dr = delta + (size_t)r * outc;
    float* o = out + (size_t)r * P + koff;
    for (int j = 0; j < in; j++) {
      const float s = ar[j];
      float* oj = o + (size_t)j * outc;
      int k = 0;
#if defined(__AVX512F__)
      // The block is written once and not read back soon: stream it past the caches (from the
      // first 64-byte boundary on).
      if (((uintptr_t)oj & 3) == 0) {
        for (; k < outc && ((uintptr_t)(oj + k) & 63); k++) oj[k] = s * dr[k];
        const __m512 sv = _mm512_set1_ps(s);
        for (; k + 16 <= outc; k += 16) _mm512_stream_ps(oj + k, _mm512_mul_ps(sv, _mm512_loadu_ps(dr + k)));
      }
#endif
      for (; k < outc; k++) oj[k] = s * dr[k];
    }
    if (boff >= 0) memcpy(out + (size_t)r * P + boff, dr, (size_t)outc * sizeof(float));
  }
#if defined(__AVX512F__)
  _mm_sfence();
#endif
}

// Tile of 4-byte elements: out[i0..] = x[i0 % xs0, ...]; rank <= 8.
void gl_tile(const float* x, float* out, int rank, const int* xs, const int* reps) {
  SERIALIZED;
  // One axis at a time, innermost first, in place in out: the data so far is `outer` chunks of
  // `len` values (axes < d untiled, axes > d tiled); each chunk becomes reps[d] copies of itself,
  // made by doubling. Chunks move right, so the last is done first. A broadcast of one value to a
  // million (a mean's gradient) is ~20 copies instead of a million 4-byte ones.
  long len = 1, outer = 1;
  for (int d = 0; d < rank; d++) outer *= xs[d];
  memcpy(out, x, (size_t)outer * sizeof(float));
  for (int d = rank - 1; d >= 0; d--) {
    outer /= xs[d];
    len *= xs[d];
    const long r = reps[d];
    if (r == 1) continue;
    for (long i = outer - 1; i >= 0; i--) {
      float* dst = out + i * len * r;
      if (i > 0) memcpy(dst, out + i * len, (size_t)len * sizeof(float));
      for (long have = 1; have < r;) {
        const long n = have < r - have ? have : r - have;
        memcpy(dst + have * len, dst, (size_t)(n * len) * sizeof(float));
        have += n;
      }
    }
    len *= r;
  }
}

// ---------------------------------------------------------------------------------------------
// Gradient post-processing (GradNet): per-block top-q % sparsification of rows.

// The k-th smallest |x| (0-based) of n values, by radix selection: the bit patterns of
// non-negative floats are ordered like their values, so three histogram passes (11, 11 and 10
// bits, each over the values left in the chosen bin) find it; u is n values of scratch. The
// quickselect this replaced (Hoare partitions of a copy) took 0.58 ms for a row of h = 64 MNIST
// features (three blocks, 135,360 values) at 2 threads; this takes about a quarter of that.
static float kth_smallest_abs(const float* x, int n, int k, uint32_t* u) {
  uint32_t hist[2048];
  memset(hist, 0, sizeof hist);
  for (int i = 0; i < n; i++) {
    uint32_t v;
    memcpy(&v, x + i, 4);
    u[i] = v & 0x7fffffffu;
    hist[u[i] >> 21]++;
  }
  int b1 = 0;
  while (k >= (int)hist[b1]) k -= (int)hist[b1++];
  int m = 0;
  for (int i = 0; i < n; i++) if (u[i] >> 21 == (uint32_t)b1) u[m++] = u[i];
  memset(hist, 0, sizeof hist);
  for (int i = 0; i < m; i++) hist[(u[i] >> 10) & 2047]++;
  int b2 = 0;
  while (k >= (int)hist[b2]) k -= (int)hist[b2++];
  int m2 = 0;
  for (int i = 0; i < m; i++) if (((u[i] >> 10) & 2047) == (uint32_t)b2) u[m2++] = u[i];
  memset(hist, 0, 1024 * sizeof hist[0]);
  for (int i = 0; i < m2; i++) hist[u[i] & 1023]++;
  int b3 = 0;
  while (k >= (int)hist[b3]) k -= (int)hist[b3++];
  const uint32_t bits = (uint32_t)b1 << 21 | (uint32_t)b2 << 10 | (uint32_t)b3;
  float v;
  memcpy(&v, &bits, 4);
  return v;
}

// In each row and each block [offsets[b], offsets[b] + sizes[b]), zero every entry whose |g| is not
// strictly above the (100 − q)th percentile of the block's |g| (numpy's linear interpolation).
// Returns the number of entries kept.
long gl_sparsify(float* rows, int nrows, long P, int nblocks, const long* offsets, const int* sizes,
                 double q) {
  SERIALIZED;
  int maxb = 0;
  for (int b = 0; b < nblocks; b++) if (sizes[b] > maxb) maxb = sizes[b];
  long kept = 0;
#pragma omp parallel num_threads(g_threads) reduction(+ : kept)
  {
    int tid = thread_id();
    uint32_t* u = (uint32_t*)grow(&g_part[tid], &g_pcap[tid], (size_t)maxb);
#pragma omp for schedule(dynamic, 4)
    for (int r = 0; r < nrows; r++) {
      if (!u) continue;  // the error is recorded; the caller reports it
      for (int b = 0; b < nblocks; b++) {
        float* blk = rows + (size_t)r * P + offsets[b];
        const int n = sizes[b];
        if (n <= 0) continue;
        const double pos = (100.0 - q) / 100.0 * (n - 1);
        const int lo = (int)floor(pos);
        const double frac = pos - lo;
        float thr = kth_smallest_abs(blk, n, lo, u);
        if (frac > 0 && lo + 1 < n) {
          // the (lo + 1)-th smallest: thr again if it occurs past position lo, else the next value
          int upto = 0;
          float next = INFINITY;
          for (int i = 0; i < n; i++) {
            const float v = fabsf(blk[i]);
            upto += v <= thr;
            if (v > thr && v < next) next = v;
          }
          if (lo + 1 < upto) next = thr;
          thr = (float)(thr + frac * ((double)next - thr));
        }
        for (int i = 0; i < n; i++) {
          if (fabsf(blk[i]) > thr) kept++;
          else blk[i] = 0.f;
        }
      }
    }
  }
  return kept;
}

// ---------------------------------------------------------------------------------------------
// GradNet on sparse rows (lib/gradnet/sparse.ts holds the math and the TypeScript reference; a
// test checks both against TF.js autodiff). Rows are stored back to back: row e's entries are
// rowStart[e] … rowStart[e+1] − 1 of idx (ascending input indices, uint16, or uint32 when idx32)
// and val. The first layer is block-diagonal: block b covers inputs [bounds[b], bounds[b+1]) and
// hidden units [hoff[b], hoff[b] + hidden[b]). All parameters live in one array theta: W_b
// [d_b, hidden[b]] row-major at wOff[b], its biases at bOff[b], Wo [H, C] at oOff[0], bo at oOff[1].
//
// The weight rows are walked in tiles of about GN_TILE_BYTES, and every row of a group visits a
// tile before the next tile is read (a cursor per row walks its ascending entries tile by tile):
// a pass reads W from memory about once per group instead of once per row. At the paper's
// 5+100+25 on h = 64 MNIST rows (W of 41 MB, 20,000 entries a row) a step of 25 rows took 46.6
// ms row by row (1 thread) — memory-bound on W. Each weight row and each hidden unit still sums
// its terms in the same order as row by row, so the results are the same bits, and so are they
// at any thread count: the forward pass splits the group's rows between threads, the update the
// weight rows.

#define GN_TILE_BYTES (40 * 1024)
#define GN_GROUP 32

static float* g_gn = NULL;
static size_t g_gn_cap = 0;

static inline int gn_index(const void* idx, int idx32, int q) {
  return idx32 ? (int)((const uint32_t*)idx)[q] : (int)((const uint16_t*)idx)[q];
}

// First entry of [from, to) whose index is ≥ j.
static int gn_lower_bound(const void* idx, int idx32, int from, int to, int j) {
  while (from < to) {
    const int mid = from + (to - from) / 2;
    if (gn_index(idx, idx32, mid) < j) from = mid + 1;
    else to = mid;
  }
  return from;
}

static inline void gn_axpy(float* restrict y, const float* restrict x, float a, int n) {
  for (int t = 0; t < n; t++) y[t] += a * x[t];
}

#if defined(__AVX512F__)
// The forward pass's inner loop for one row and one tile: h[0 … hb) += val[q] · W[j_q] for the
// row's entries q from `q` while j_q < j1 (returns the first q not taken), with h in NV vector
// registers (hb ≤ 16·NV; the last vector masked) instead of loaded and stored per entry, as
// gn_axpy's loop compiles (and with its scalar tail gone). Each unit gets the same fused
// multiply-adds in the same order as gn_axpy, so the same bits. With the update's twin below, a
// step of the paper's layout (5+100+25, 25 rows of 20,300 entries) took 5.1 ms instead of 8.7 at
// 1 thread, 7.9 instead of 11.2 at 2 (interleaved runs beside a GradNet training job).
#define GN_FORWARD_RUN(NV)                                                                      \
  static int gn_forward_run_##NV(float* hh, const float* w, int hb, const void* idx, int idx32, \
                                 const float* val, int q, int end, int j1) {                   \
    const __mmask16 last = (__mmask16)(hb % 16 ? (1u << (hb % 16)) - 1 : 0xffffu);             \
    __m512 acc[NV];                                                                            \
    for (int v = 0; v < NV; v++) {                                                             \
      acc[v] = _mm512_maskz_loadu_ps(v == NV - 1 ? last : 0xffff, hh + 16 * v);                \
    }                                                                                          \
    for (; q < end; q++) {                                                                     \
      const int j = gn_index(idx, idx32, q);                                                   \
      if (j >= j1) break;                                                                      \
      const float* r = w + (size_t)j * hb;                                                     \
      const __m512 a = _mm512_set1_ps(val[q]);                                                 \
      for (int v = 0; v < NV; v++) {                                                           \
        const __m512 x = _mm512_maskz_loadu_ps(v == NV - 1 ? last : 0xffff, r + 16 * v);       \
        acc[v] = _mm512_fmadd_ps(a, x, acc[v]);                                                \
      }                                                                                        \
    }                                                                                          \
    for (int v = 0; v < NV; v++) {                                                             \
      _mm512_mask_storeu_ps(hh + 16 * v, v == NV - 1 ? last : 0xffff, acc[v]);                 \
    }                                                                                          \
    return q;                                                                                  \
  }
// The update's inner loop for one row and one tile: W[j_q] −= (lr · val[q]) · d over the row's
// entries q from `q` while j_q < j1, with d (the row's hidden-unit gradients) held in registers;
// the same fused multiply-subtracts as gn_sub_scaled's loop, so the same bits.
#define GN_UPDATE_RUN(NV)                                                                       \
  static int gn_update_run_##NV(float* w, const float* d, int hb, const void* idx, int idx32,   \
                                const float* val, float lr, int q, int end, int j1) {          \
    const __mmask16 last = (__mmask16)(hb % 16 ? (1u << (hb % 16)) - 1 : 0xffffu);             \
    __m512 dv[NV];                                                                             \
    for (int v = 0; v < NV; v++) {                                                             \
      dv[v] = _mm512_maskz_loadu_ps(v == NV - 1 ? last : 0xffff, d + 16 * v);                  \
    }                                                                                          \
    for (; q < end; q++) {                                                                     \
      const int j = gn_index(idx, idx32, q);                                                   \
      if (j >= j1) break;                                                                      \
      float* r = w + (size_t)j * hb;                                                           \
      const __m512 a = _mm512_set1_ps(lr * val[q]);                                            \
      for (int v = 0; v < NV; v++) {                                                           \
        const __mmask16 m = v == NV - 1 ? last : 0xffff;                                       \
        const __m512 x = _mm512_maskz_loadu_ps(m, r + 16 * v);                                 \
        _mm512_mask_storeu_ps(r + 16 * v, m, _mm512_fnmadd_ps(a, dv[v], x));                   \
      }                                                                                        \
    }                                                                                          \
    return q;                                                                                  \
  }
#define GN_RUNS(NV) GN_FORWARD_RUN(NV) GN_UPDATE_RUN(NV)
GN_RUNS(1)
GN_RUNS(2)
GN_RUNS(3)
GN_RUNS(4)
GN_RUNS(5)
GN_RUNS(6)
GN_RUNS(7)
GN_RUNS(8)
#undef GN_RUNS
#undef GN_UPDATE_RUN
#undef GN_FORWARD_RUN
#endif

// h += Σ val[q] · W[j_q] over the row's entries from q while j_q < j1; returns the first q not
// taken.
static inline int gn_forward_run(float* hh, const float* w, int hb, const void* idx, int idx32,
                                 const float* val, int q, int end, int j1) {
#if defined(__AVX512F__)
  switch ((hb + 15) / 16) {
    case 1: return gn_forward_run_1(hh, w, hb, idx, idx32, val, q, end, j1);
    case 2: return gn_forward_run_2(hh, w, hb, idx, idx32, val, q, end, j1);
    case 3: return gn_forward_run_3(hh, w, hb, idx, idx32, val, q, end, j1);
    case 4: return gn_forward_run_4(hh, w, hb, idx, idx32, val, q, end, j1);
    case 5: return gn_forward_run_5(hh, w, hb, idx, idx32, val, q, end, j1);
    case 6: return gn_forward_run_6(hh, w, hb, idx, idx32, val, q, end, j1);
    case 7: return gn_forward_run_7(hh, w, hb, idx, idx32, val, q, end, j1);
    case 8: return gn_forward_run_8(hh, w, hb, idx, idx32, val, q, end, j1);
    default: break;
  }
#endif
  for (; q < end; q++) {
    const int j = gn_index(idx, idx32, q);
    if (j >= j1) break;
    gn_axpy(hh, w + (size_t)j * hb, val[q], hb);
  }
  return q;
}

static inline void gn_sub_scaled(float* restrict w, const float* restrict d, float a, int n) {
  for (int t = 0; t < n; t++) w[t] -= a * d[t];
}

// W[j_q] −= (lr · val[q]) · d over the row's entries from q while j_q < j1; returns the first q
// not taken.
static inline int gn_update_run(float* w, const float* d, int hb, const void* idx, int idx32,
                                const float* val, float lr, int q, int end, int j1) {
#if defined(__AVX512F__)
  switch ((hb + 15) / 16) {
    case 1: return gn_update_run_1(w, d, hb, idx, idx32, val, lr, q, end, j1);
    case 2: return gn_update_run_2(w, d, hb, idx, idx32, val, lr, q, end, j1);
    case 3: return gn_update_run_3(w, d, hb, idx, idx32, val, lr, q, end, j1);
    case 4: return gn_update_run_4(w, d, hb, idx, idx32, val, lr, q, end, j1);
    case 5: return gn_update_run_5(w, d, hb, idx, idx32, val, lr, q, end, j1);
    case 6: return gn_update_run_6(w, d, hb, idx, idx32, val, lr, q, end, j1);
    case 7: return gn_update_run_7(w, d, hb, idx, idx32, val, lr, q, end, j1);
    case 8: return gn_update_run_8(w, d, hb, idx, idx32, val, lr, q, end, j1);
    default: break;
  }
#endif
  for (; q < end; q++) {
    const int j = gn_index(idx, idx32, q);
    if (j >= j1) break;
    gn_sub_scaled(w + (size_t)j * hb, d, lr * val[q], hb);
  }
  return q;
}

// Walks the entries with indices in [ja, jb) of rows e0 … e1 − 1, tile by tile. Forward (dh
// NULL): h[e] += val · W[j] over each row's hidden units of j's block (h rows of H, zeroed by the
// caller). Update: W[j] −= (lr · val) · dh[e] for the row's block. cur holds one cursor per row.
static void gn_walk(const void* idx, int idx32, const float* val, const int* rowStart, int e0,
                    int e1, int ja, int jb, int nb, const int* bounds, const int* hidden,
                    const int* hoff, float* theta, const int* wOff, int H, float* h,
                    const float* dh, float lr, int* cur) {
  for (int e = e0; e < e1; e++) {
    cur[e - e0] = gn_lower_bound(idx, idx32, rowStart[e], rowStart[e + 1], ja);
  }
  for (int b = 0; b < nb; b++) {
    const int lo = bounds[b] > ja ? bounds[b] : ja, hi = bounds[b + 1] < jb ? bounds[b + 1] : jb;
    if (lo >= hi) continue;
    const int hb = hidden[b];
    const int tileRows = hb * 4 * 64 > GN_TILE_BYTES ? 64 : GN_TILE_BYTES / (4 * hb);
    float* w = theta + wOff[b] - (size_t)bounds[b] * hb;  // w + j·hb is row j's weights
    for (int j0 = lo; j0 < hi; j0 += tileRows) {
      const int j1 = j0 + tileRows < hi ? j0 + tileRows : hi;
      // the next tile's lines, prefetched a share per row of the group: the rows' entries are
      // ~7 weight rows apart, too far for the hardware prefetcher to follow
      const int j2 = j1 + tileRows < hi ? j1 + tileRows : hi;
      const char* next = (const char*)(w + (size_t)j1 * hb);
      const long lines = ((long)(j2 - j1) * hb * 4 + 63) / 64;
      const long share = (lines + (e1 - e0) - 1) / (e1 - e0 > 0 ? e1 - e0 : 1);
      for (int e = e0; e < e1; e++) {
        for (long l = (e - e0) * share; l < (e - e0 + 1) * share && l < lines; l++) {
          if (dh) __builtin_prefetch(next + l * 64, 1, 2);
          else __builtin_prefetch(next + l * 64, 0, 2);
        }
        int q = cur[e - e0];
        const int end = rowStart[e + 1];
        if (dh == NULL) {
          q = gn_forward_run(h + (size_t)(e - e0) * H + hoff[b], w, hb, idx, idx32, val, q, end, j1);
        } else {
          q = gn_update_run(w, dh + (size_t)e * H + hoff[b], hb, idx, idx32, val, lr, q, end, j1);
        }
        cur[e - e0] = q;
      }
    }
  }
}

// Hidden layers (after ReLU) of rows e0 … e1 − 1 into h [e1 − e0, H], split between threads.
static void gn_hidden_rows(const void* idx, int idx32, const float* val, const int* rowStart,
                           int e0, int e1, int nb, const int* bounds, const int* hidden,
                           const int* hoff, float* theta, const int* wOff, const int* bOff, int H,
                           float* h, int* cur, int threads) {
  const int n = e1 - e0;
  const int P = bounds[nb];
#pragma omp parallel for schedule(static, 1) num_threads(threads)
  for (int part = 0; part < threads; part++) {
    const int a = e0 + (int)((long)n * part / threads), z = e0 + (int)((long)n * (part + 1) / threads);
    float* hp = h + (size_t)(a - e0) * H;
    for (size_t k = 0; k < (size_t)(z - a) * H; k++) hp[k] = 0.f;
    gn_walk(idx, idx32, val, rowStart, a, z, 0, P, nb, bounds, hidden, hoff, theta, wOff, H, hp,
            NULL, 0.f, cur + (a - e0));
    for (int e = a; e < z; e++) {
      for (int b = 0; b < nb; b++) {
        const float* bb = theta + bOff[b];
        float* o = h + (size_t)(e - e0) * H + hoff[b];
        for (int t = 0; t < hidden[b]; t++) {
          const float v = o[t] + bb[t];
          o[t] = v > 0.f ? v : 0.f;
        }
      }
    }
  }
}

static int gn_offsets(int nb, const int* hidden, int* hoff) {
  if (nb < 1 || nb > 64) return -1;
  hoff[0] = 0;
  for (int b = 0; b < nb; b++) hoff[b + 1] = hoff[b] + hidden[b];
  return hoff[nb];
}

// Threads for a pass of about `work` multiply-adds (waking a passive thread costs ~0.1 ms).
static int gn_threads(double work) { return work < 2e5 ? 1 : g_threads; }

// Hidden layers (after ReLU) of R rows into hid [R, H]. Returns 0, or −1 for > 64 blocks.
int gl_gradnet_hidden(const void* idx, const float* val, const int* rowStart, int R, int idx32,
                      int nb, const int* bounds, const int* hidden, const float* theta,
                      const int* wOff, const int* bOff, float* hid) {
  SERIALIZED;
  int hoff[65];
  const int H = gn_offsets(nb, hidden, hoff);
  if (H < 0) return -1;
  int cur[GN_GROUP];
  for (int e0 = 0; e0 < R; e0 += GN_GROUP) {
    const int e1 = e0 + GN_GROUP < R ? e0 + GN_GROUP : R;
    const double work = (double)(rowStart[e1] - rowStart[e0]) * H / nb;
    gn_hidden_rows(idx, idx32, val, rowStart, e0, e1, nb, bounds, hidden, hoff, (float*)theta,
                   wOff, bOff, H, hid + (size_t)e0 * H, cur, gn_threads(work));
  }
  return 0;
}

// One plain-SGD step on the mean softmax cross-entropy of B rows; every gradient is taken at the
// weights before the step. out[0] = summed loss, out[1] = rows whose argmax is the target.
// Returns 0, or −1 (more than 64 blocks or 256 classes, or no memory for the scratch).
int gl_gradnet_step(const void* idx, const float* val, const int* rowStart, int B, int idx32,
                    int nb, const int* bounds, const int* hidden, float* theta, const int* wOff,
                    const int* bOff, const int* oOff, int C, const int* targets, float lr,
                    double* out) {
  SERIALIZED;
  int hoff[65];
  const int H = gn_offsets(nb, hidden, hoff);
  if (H < 0 || C > 256) return -1;
  const size_t need = (size_t)B * (2 * (size_t)H + (size_t)C + 1);
  if (need > g_gn_cap) {
    float* p = (float*)realloc(g_gn, need * sizeof(float));
    if (!p) {
      alloc_failed("GradNet step buffers", need * sizeof(float));
      return -1;
    }
    g_gn = p;
    g_gn_cap = need;
  }
  float* Wo = theta + oOff[0];
  float* bo = theta + oOff[1];
  float* hid = g_gn;
  float* dhid = hid + (size_t)B * H;
  float* p = dhid + (size_t)B * H;
  int* cur = (int*)(p + (size_t)B * C);
  const double work = (double)(rowStart[B] - rowStart[0]) * H / nb;
  const int threads = gn_threads(work);
  gn_hidden_rows(idx, idx32, val, rowStart, 0, B, nb, bounds, hidden, hoff, theta, wOff, bOff, H,
                 hid, cur, threads);
  double loss = 0;
  int correct = 0;
  for (int e = 0; e < B; e++) {
    const float* h = hid + (size_t)e * H;
    double z[256];
    for (int c = 0; c < C; c++) z[c] = bo[c];
    for (int j = 0; j < H; j++) {
      const float hj = h[j];
      if (hj == 0.f) continue;
      for (int c = 0; c < C; c++) z[c] += (double)hj * Wo[(size_t)j * C + c];
    }
    int arg = 0;
    for (int c = 1; c < C; c++) if (z[c] > z[arg]) arg = c;
    const int y = targets[e];
    if (arg == y) correct++;
    double s = 0;
    for (int c = 0; c < C; c++) s += exp(z[c] - z[arg]);
    loss += log(s) - (z[y] - z[arg]);
    for (int c = 0; c < C; c++) p[(size_t)e * C + c] = (float)(exp(z[c] - z[arg]) / s / B);
    p[(size_t)e * C + y] -= 1.f / B;
  }
  // back through the output layer at the old Wo, then update it
  for (int e = 0; e < B; e++) {
    for (int j = 0; j < H; j++) {
      const size_t k = (size_t)e * H + j;
      if (hid[k] <= 0.f) {
        dhid[k] = 0.f;
        continue;
      }
      float s = 0.f;
      for (int c = 0; c < C; c++) s += p[(size_t)e * C + c] * Wo[(size_t)j * C + c];
      dhid[k] = s;
    }
  }
  for (int j = 0; j < H; j++) {
    for (int c = 0; c < C; c++) {
      float g = 0.f;
      for (int e = 0; e < B; e++) g += hid[(size_t)e * H + j] * p[(size_t)e * C + c];
      Wo[(size_t)j * C + c] -= lr * g;
    }
  }
  for (int c = 0; c < C; c++) {
    float g = 0.f;
    for (int e = 0; e < B; e++) g += p[(size_t)e * C + c];
    bo[c] -= lr * g;
  }
  // first layer: biases, then the weight rows of each row's entries, the rows split between
  // threads by weighted count (row j of block b costs hidden[b] per entry)
  for (int b = 0; b < nb; b++) {
    float* bb = theta + bOff[b];
    for (int t = 0; t < hidden[b]; t++) {
      float g = 0.f;
      for (int e = 0; e < B; e++) g += dhid[(size_t)e * H + hoff[b] + t];
      bb[t] -= lr * g;
    }
  }
  int cut[MAX_THREADS + 1];
  cut[0] = 0;
  double total = 0;
  for (int b = 0; b < nb; b++) total += (double)(bounds[b + 1] - bounds[b]) * hidden[b];
  for (int part = 1; part < threads; part++) {
    double want = total * part / threads;
    int b = 0;
    while (b < nb - 1 && want >= (double)(bounds[b + 1] - bounds[b]) * hidden[b]) {
      want -= (double)(bounds[b + 1] - bounds[b]) * hidden[b];
      b++;
    }
    cut[part] = bounds[b] + (int)(want / hidden[b]);
    if (cut[part] < cut[part - 1]) cut[part] = cut[part - 1];
  }
  cut[threads] = bounds[nb];
  int* curs = (int*)malloc(sizeof(int) * (size_t)B * threads);
  if (!curs) {
    alloc_failed("GradNet step cursors", sizeof(int) * (size_t)B * threads);
    return -1;
  }
#pragma omp parallel for schedule(static, 1) num_threads(threads)
  for (int part = 0; part < threads; part++) {
    gn_walk(idx, idx32, val, rowStart, 0, B, cut[part], cut[part + 1], nb, bounds, hidden, hoff,
            theta, wOff, H, NULL, dhid, lr, curs + (size_t)part * B);
  }
  free(curs);
  out[0] = loss;
  out[1] = correct;
  return 0;
}

// The feature cache's sizing pass: rowStart[r] = nonzero entries of rows before r (nrows + 1
// values); returns their total. Rows are counted in parallel.
long gl_count_rows(const float* rows, int nrows, long P, uint32_t* rowStart) {
  SERIALIZED;
#pragma omp parallel for schedule(static) num_threads(memory_threads((double)nrows * P))
  for (int r = 0; r < nrows; r++) {
    const float* row = rows + (size_t)r * P;
    uint32_t c = 0;
    for (long j = 0; j < P; j++) c += row[j] != 0.f;
    rowStart[r + 1] = c;
  }
  rowStart[0] = 0;
  for (int r = 0; r < nrows; r++) rowStart[r + 1] += rowStart[r];
  return (long)rowStart[nrows];
}

// GradNet's scale normalisation on sparse entries, in place: v ← (v − min[i]) / (max[i] − min[i])
// (a zero range counting as 1), then with root the signed square root (scale_power, the paper's)
// — in double, as lib/gradients/normalize.ts computes it, so the same bits. Zeros stay zero. The
// TypeScript loop took ~9 ns an entry (18 ms for 100 rows of h = 64 features).
static inline float scale_entry(float g, long i, const float* mn, const float* mx, int root) {
  const double range = (double)mx[i] - (double)mn[i];
  const double v = ((double)g - (double)mn[i]) / (range == 0 ? 1 : range);
  return (float)(root ? (v < 0 ? -sqrt(-v) : sqrt(v)) : v);
}

void gl_scale_entries(const void* idx, int idx32, float* val, long n, const float* mn,
                      const float* mx, int root) {
  SERIALIZED;
#pragma omp parallel for schedule(static) num_threads(memory_threads((double)n * 4))
  for (long q = 0; q < n; q++) {
    const float g = val[q];
    if (g == 0.f) continue;
    const long i = idx32 ? (long)((const uint32_t*)idx)[q] : (long)((const uint16_t*)idx)[q];
    val[q] = scale_entry(g, i, mn, mx, root);
  }
}

// Reads rows of GradNet's feature file (format: lib/gradnet/file_cache.ts — per row its m values
// as float32, then m uint32 indices when `wide`, else m uint16 gaps from the previous index padded
// to 4 bytes) into back-to-back idx (uint32) / val with row starts, normalised as
// gl_scale_entries does when `scale` is 1 (scale) or 2 (scale_power, exponent 0.5), raw when 0.
// Row q is the file's row rows[q]. Returns 0, or −errno of a failed open/read, or −EIO when a row
// is cut short or holds an index ≥ P (the feature length). It takes no lock and no OpenMP threads and touches nothing but its arguments:
// GradNet training calls it through a non-blocking FFI symbol, on a thread of its own, to read the
// next batch while the current step runs (the reads and decoding were ~half of a 13 ms step of
// the paper preset's h = 64 features).
int gl_read_feature_rows(const char* path, int B, const int* rows, const double* start,
                         const uint32_t* count, const uint8_t* wide, uint32_t* idx, float* val,
                         int* rowStart, long P, const float* mn, const float* mx, int scale) {
  const int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -errno;
  size_t cap = 0;
  uint8_t* buf = NULL;
  int rc = 0;
  long at = 0;
  for (int q = 0; q < B && rc == 0; q++) {
    const int r = rows[q];
    const long m = count[r];
    const size_t bytes = wide[r] ? 8 * (size_t)m : 6 * (size_t)m + (size_t)(m % 2) * 2;
    if (bytes > cap) {
      uint8_t* p = (uint8_t*)realloc(buf, bytes);
      if (!p) {
        rc = -ENOMEM;
        break;
      }
      buf = p;
      cap = bytes;
    }
    for (size_t done = 0; done < bytes;) {
      const ssize_t got = pread(fd, buf + done, bytes - done, (off_t)start[r] + (off_t)done);
      if (got < 0 && errno == EINTR) continue;
      if (got <= 0) {
        rc = got < 0 ? -errno : -EIO;
        break;
      }
      done += (size_t)got;
    }
    if (rc != 0) break;
    rowStart[q] = (int)at;
    float* v = val + at;
    uint32_t* ix = idx + at;
    memcpy(v, buf, 4 * (size_t)m);
    if (wide[r]) {
      memcpy(ix, buf + 4 * (size_t)m, 4 * (size_t)m);
    } else {
      const uint16_t* gaps = (const uint16_t*)(buf + 4 * (size_t)m);
      uint32_t prev = 0;
      for (long e = 0; e < m; e++) ix[e] = prev += gaps[e];
    }
    if (m > 0 && ix[m - 1] >= (uint32_t)P) {
      rc = -EIO;  // a damaged file: no index past the feature length
      break;
    }
    if (scale) {
      for (long e = 0; e < m; e++) {
        if (v[e] != 0.f) v[e] = scale_entry(v[e], (long)ix[e], mn, mx, scale == 2);
      }
    }
    at += m;
  }
  if (rc == 0) rowStart[B] = (int)at;
  free(buf);
  close(fd);
  return rc;
}

// Row r's nonzero entries to idx/val from position e; returns the position after them.
static long compress_row(const float* row, long P, int idx32, void* idx, float* val, long e) {
  long j = 0;
#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VL__)
  // 16 values a time with the compress-store instructions: the scalar loop's branch on each
  // value ran ~4 GB/s on h = 64 feature rows (85 % zeros at random places)
  const __m512i iota = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
  for (; j + 16 <= P; j += 16) {
    const __m512 v = _mm512_loadu_ps(row + j);
    const __mmask16 m = _mm512_cmp_ps_mask(v, _mm512_setzero_ps(), _CMP_NEQ_UQ);
    if (!m) continue;
    const int k = __builtin_popcount(m);
    _mm512_mask_compressstoreu_ps(val + e, m, v);
    const __m512i ix = _mm512_add_epi32(_mm512_set1_epi32((int)j), iota);
    if (idx32) {
      _mm512_mask_compressstoreu_epi32((uint32_t*)idx + e, m, ix);
    } else {
      const __m256i packed = _mm512_cvtepi32_epi16(_mm512_maskz_compress_epi32(m, ix));
      _mm256_mask_storeu_epi16((uint16_t*)idx + e, (__mmask16)((1u << k) - 1), packed);
    }
    e += k;
  }
#endif
  for (; j < P; j++) {
    const float v = row[j];
    if (v != 0.f) {
      if (idx32) ((uint32_t*)idx)[e] = (uint32_t)j;
      else ((uint16_t*)idx)[e] = (uint16_t)j;
      val[e++] = v;
    }
  }
  return e;
}

// Compresses rows [nrows, P] to their nonzero entries: ascending indices (uint16, or uint32 when
// idx32) and values, row r's entries at rowStart[r] … rowStart[r+1] − 1, rowStart as
// gl_count_rows left it. Rows are compressed in parallel.
void gl_compress_rows(const float* rows, int nrows, long P, int idx32, void* idx, float* val,
                      const uint32_t* rowStart) {
  SERIALIZED;
#pragma omp parallel for schedule(static) num_threads(memory_threads((double)nrows * P))
  for (int r = 0; r < nrows; r++) {
    compress_row(rows + (size_t)r * P, P, idx32, idx, val, rowStart[r]);
  }
}

// ---------------------------------------------------------------------------------------------
// One GUNN unit (lib/layers/gunn.ts) in training mode, NHWC, rows = n·h·w pixels, o = C/S:
//   h1 = read·w1 (1×1, C → 2o)      a1 = relu(bn1(h1))
//   h2 = conv3×3(a1, w2) ("same")   a2 = relu(bn2(h2))
//   h3 = a2·w3 (1×1, 2o → o)        hp = read·wp (the projection, 1×1, C → o)
//   out = base with channels s0 … s0+o−1 increased by bn3(h3) + bnp(hp)
// Instead of ~40 TF.js kernels forward and ~130 backward, one call each way. The two 1×1
// convolutions of `read` run as one product with [w1 | wp] (C → 3o), and bn1 and bnp as one norm
// over its 3o columns: at o = 6 a 6-column product wastes most of a vector register.
// in:  read, base, w1 [C,2o], w2 [3,3,2o,2o], w3 [2o,o], wp [C,o], γ1, β1, γ2, β2, γ3, β3, γp, βp
// out: out [rows,C], h1p [rows,3o] (h1 | hp), a1, h2, a2 [rows,2o], h3 [rows,o],
//      stats [3, 6o]: mean | biased variance | 1/√(var + ε), each bn1 (2o) | bnp (o) | bn2 (2o) |
//      bn3 (o)
enum { GU_READ, GU_BASE, GU_W1, GU_W2, GU_W3, GU_WP, GU_G1, GU_B1, GU_G2, GU_B2, GU_G3, GU_B3,
       GU_GP, GU_BP };
enum { GU_OUT, GU_H1P, GU_A1, GU_H2, GU_A2, GU_H3, GU_STATS };

// The units' temporaries, kept between calls: fresh megabytes per call cost their page faults.
static float* g_gunn_buf;
static size_t g_gunn_cap;
static float* g_gunn_state;  // the layer backward's rebuilt input state
static size_t g_gunn_state_cap;

static void relu_inplace(float* x, size_t n) {
  int threads = memory_threads((double)n);
#pragma omp parallel for schedule(static) num_threads(threads)
  for (size_t i = 0; i < n; i++) x[i] = x[i] > 0.f ? x[i] : 0.f;
}

// dx *= (a > 0), a = relu output
static void relu_grad_inplace(float* dx, const float* a, size_t n) {
  int threads = memory_threads((double)n);
#pragma omp parallel for schedule(static) num_threads(threads)
  for (size_t i = 0; i < n; i++) dx[i] = a[i] > 0.f ? dx[i] : 0.f;
}

// [a | b] per row: a [rows, ca], b [rows, cb] -> out [rows, ca + cb]
static void join_columns(const float* a, int ca, const float* b, int cb, float* out, long rows) {
  int threads = memory_threads((double)rows * (ca + cb));
#pragma omp parallel for schedule(static) num_threads(threads)
  for (long r = 0; r < rows; r++) {
    memcpy(out + (size_t)r * (ca + cb), a + (size_t)r * ca, (size_t)ca * sizeof(float));
    memcpy(out + (size_t)r * (ca + cb) + ca, b + (size_t)r * cb, (size_t)cb * sizeof(float));
  }
}

static void gunn_unit_forward(const float* const* in, float* const* out, int n, int h, int w,
                              int C, int o, int s0, float eps) {
  SERIALIZED;
  const long rows = (long)n * h * w;
  const int o2 = 2 * o, o3 = 3 * o;
  float* mean = out[GU_STATS];
  float* var = mean + 6 * o;
  float* rstd = mean + 12 * o;
  size_t need = (size_t)rows * (o3 + o) + (size_t)C * o3 + 2 * (size_t)o3;
  float* tmp = grow(&g_gunn_buf, &g_gunn_cap, need);
  if (!tmp) return;
  float* y1p = tmp;                       // bn1 | bnp outputs [rows, 3o]
  float* y3 = y1p + (size_t)rows * o3;    // bn3 output [rows, o]
  float* w1p = y3 + (size_t)rows * o;     // [w1 | wp] [C, 3o]
  float* g1p = w1p + (size_t)C * o3;      // γ1 | γp
  float* b1p = g1p + o3;                  // β1 | βp
  join_columns(in[GU_W1], o2, in[GU_WP], o, w1p, C);
  memcpy(g1p, in[GU_G1], o2 * sizeof(float));
  memcpy(g1p + o2, in[GU_GP], o * sizeof(float));
  memcpy(b1p, in[GU_B1], o2 * sizeof(float));
  memcpy(b1p + o2, in[GU_BP], o * sizeof(float));
  float* h1p = out[GU_H1P];
  float* a1 = out[GU_A1];
  gl_matmul(in[GU_READ], w1p, h1p, 1, rows, o3, C, 0, 0, 0, 0, NULL, 0, 0.f);
  gl_bn_forward(h1p, g1p, b1p, y1p, mean, var, rstd, rows, o3, eps);
  int threads = memory_threads((double)rows * C);
#pragma omp parallel for schedule(static) num_threads(threads)
  for (long r = 0; r < rows; r++)
    for (int k = 0; k < o2; k++) {
      float v = y1p[(size_t)r * o3 + k];
      a1[(size_t)r * o2 + k] = v > 0.f ? v : 0.f;
    }
  gl_conv2d(a1, in[GU_W2], out[GU_H2], n, h, w, o2, 3, 3, o2, h, w, 1, 1, 1, 1, 1, 1, NULL, 0, 0.f);
  gl_bn_forward(out[GU_H2], in[GU_G2], in[GU_B2], out[GU_A2], mean + o3, var + o3, rstd + o3, rows,
                o2, eps);
  relu_inplace(out[GU_A2], (size_t)rows * o2);
  gl_matmul(out[GU_A2], in[GU_W3], out[GU_H3], 1, rows, o, o2, 0, 0, 0, 0, NULL, 0, 0.f);
  gl_bn_forward(out[GU_H3], in[GU_G3], in[GU_B3], y3, mean + 5 * o, var + 5 * o, rstd + 5 * o, rows,
                o, eps);
  const float* base = in[GU_BASE];
  float* y = out[GU_OUT];
#pragma omp parallel for schedule(static) num_threads(threads)
  for (long r = 0; r < rows; r++) {
    float* yr = y + (size_t)r * C;
    if (yr != base + (size_t)r * C) memcpy(yr, base + (size_t)r * C, (size_t)C * sizeof(float));
    const float* u3 = y3 + (size_t)r * o;
    const float* up = y1p + (size_t)r * o3 + o2;
    for (int k = 0; k < o; k++) yr[s0 + k] += u3[k] + up[k];
  }
}

// Backward of gunn_unit_forward for the gradient dout of `out`. The gradient of `base` is dout
// itself (the caller passes it on); with `accumulate` the gradient of `read` is added to what
// dread holds (dout itself when read and base are one tensor and dread is dout).
// in:  dout, read, w1, w2, w3, wp, γ1, γ2, γ3, γp, h1p, a1, h2, a2, h3, stats
// out: dread [rows,C], dw1, dw2, dw3, dwp, dγ1, dβ1, dγ2, dβ2, dγ3, dβ3, dγp, dβp
enum { GB_DOUT, GB_READ, GB_W1, GB_W2, GB_W3, GB_WP, GB_G1, GB_G2, GB_G3, GB_GP, GB_H1P, GB_A1,
       GB_H2, GB_A2, GB_H3, GB_STATS };
enum { GD_READ, GD_W1, GD_W2, GD_W3, GD_WP, GD_G1, GD_B1, GD_G2, GD_B2, GD_G3, GD_B3, GD_GP,
       GD_BP };

static void gunn_unit_backward(const float* const* in, float* const* out, int n, int h, int w,
                               int C, int o, int s0, int accumulate) {
  SERIALIZED;
  const long rows = (long)n * h * w;
  const int o2 = 2 * o, o3 = 3 * o;
  const float* mean = in[GB_STATS];
  const float* rstd = in[GB_STATS] + 12 * o;
  // g, dh3 [rows, o]; da2, dh2, da1 [rows, 2o]; dy1p, dh1p [rows, 3o]; [w1 | wp], its gradient
  // [C, 3o]; γ1 | γp and the norm's two gradients [3o]
  size_t need = (size_t)rows * (2 * o + 3 * o2 + 2 * o3) + 2 * (size_t)C * o3 + 3 * (size_t)o3;
  float* tmp = grow(&g_gunn_buf, &g_gunn_cap, need);
  if (!tmp) return;
  float* g = tmp;
  float* dh3 = g + (size_t)rows * o;
  float* da2 = dh3 + (size_t)rows * o;
  float* dh2 = da2 + (size_t)rows * o2;
  float* da1 = dh2 + (size_t)rows * o2;
  float* dy1p = da1 + (size_t)rows * o2;
  float* dh1p = dy1p + (size_t)rows * o3;
  float* w1p = dh1p + (size_t)rows * o3;
  float* dw1p = w1p + (size_t)C * o3;
  float* g1p = dw1p + (size_t)C * o3;
  float* dg1p = g1p + o3;
  float* db1p = dg1p + o3;
  gl_copy_block(in[GB_DOUT] + s0, C, g, o, rows, o);
  gl_bn_backward(in[GB_H3], g, in[GB_G3], mean + 5 * o, rstd + 5 * o, dh3, out[GD_G3], out[GD_B3],
                 rows, o);
  gl_matmul(in[GB_A2], dh3, out[GD_W3], 1, o2, o, rows, 1, 0, 0, 0, NULL, 0, 0.f);
  gl_matmul(dh3, in[GB_W3], da2, 1, rows, o2, o, 0, 1, 0, 0, NULL, 0, 0.f);
  relu_grad_inplace(da2, in[GB_A2], (size_t)rows * o2);
  gl_bn_backward(in[GB_H2], da2, in[GB_G2], mean + o3, rstd + o3, dh2, out[GD_G2], out[GD_B2], rows,
                 o2);
  gl_conv2d_backprop_filter(in[GB_A1], dh2, out[GD_W2], n, h, w, o2, 3, 3, o2, h, w, 1, 1, 1, 1, 1,
                            1);
  gl_conv2d_backprop_input(dh2, in[GB_W2], da1, n, h, w, o2, 3, 3, o2, h, w, 1, 1, 1, 1, 1, 1);
  relu_grad_inplace(da1, in[GB_A1], (size_t)rows * o2);
  // bn1 and bnp as one norm over [h1 | hp]: its output gradient is [da1 | g]
  join_columns(da1, o2, g, o, dy1p, rows);
  memcpy(g1p, in[GB_G1], o2 * sizeof(float));
  memcpy(g1p + o2, in[GB_GP], o * sizeof(float));
  gl_bn_backward(in[GB_H1P], dy1p, g1p, mean, rstd, dh1p, dg1p, db1p, rows, o3);
  memcpy(out[GD_G1], dg1p, o2 * sizeof(float));
  memcpy(out[GD_GP], dg1p + o2, o * sizeof(float));
  memcpy(out[GD_B1], db1p, o2 * sizeof(float));
  memcpy(out[GD_BP], db1p + o2, o * sizeof(float));
  gl_matmul(in[GB_READ], dh1p, dw1p, 1, C, o3, rows, 1, 0, 0, 0, NULL, 0, 0.f);
  for (int c = 0; c < C; c++) {
    memcpy(out[GD_W1] + (size_t)c * o2, dw1p + (size_t)c * o3, o2 * sizeof(float));
    memcpy(out[GD_WP] + (size_t)c * o, dw1p + (size_t)c * o3 + o2, o * sizeof(float));
  }
  join_columns(in[GB_W1], o2, in[GB_WP], o, w1p, C);
  // dread = dh1p·[w1 | wp]ᵀ, or with `accumulate` dread += it
  matrix_t A = {dh1p, o3, 0};
  matrix_t B = {w1p, o3, 1};
  gemm(rows, C, o3, pack_a_matrix, &A, pack_b_matrix, &B, out[GD_READ], C, accumulate, NULL,
       (double)rows * C * o3 < 1e6 ? 1 : g_threads);
}

// ---------------------------------------------------------------------------------------------
// A whole GUNN layer (S units) in one call each way, the state updated in place: no copy of the
// full state per unit, and one TF.js kernel per layer instead of one per unit.
// in:  x, then per unit the 12 weights of gunn_unit_forward (w1, w2, w3, wp, γ1, β1, γ2, β2, γ3,
//      β3, γp, βp)
// out: y [rows, C]; acts: per unit h1p [rows,3o], a1, h2, a2 [rows,2o], h3 [rows,o] back to back
//      (10o·rows floats a unit); stats: per unit [3, 6o] (as gunn_unit_forward). gradual: unit i
//      reads the state as updated so far; otherwise (SUNN) every unit reads x.
static void unit_acts(float* acts, long rows, int o, int i, float* p[5]) {
  float* a = acts + (size_t)i * rows * 10 * o;
  const int width[5] = {3, 2, 2, 2, 1};
  for (int k = 0; k < 5; k++) {
    p[k] = a;
    a += (size_t)rows * width[k] * o;
  }
}

void gl_gunn_layer_forward(const float* const* in, float* const* out, int n, int h, int w, int C,
                           int S, int gradual, float eps) {
  SERIALIZED;
  const long rows = (long)n * h * w;
  const int o = C / S;
  float* y = out[0];
  gl_copy_block(in[0], C, y, C, rows, C);
  for (int i = 0; i < S; i++) {
    const float* uin[14];
    float* uout[7];
    uin[GU_READ] = gradual ? y : in[0];
    uin[GU_BASE] = y;
    for (int k = 0; k < 12; k++) uin[GU_W1 + k] = in[1 + 12 * i + k];
    uout[GU_OUT] = y;
    unit_acts(out[1], rows, o, i, uout + GU_H1P);
    uout[GU_STATS] = out[2] + (size_t)i * 18 * o;
    gunn_unit_forward(uin, uout, n, h, w, C, o, i * o, eps);
  }
}

// Backward of gl_gunn_layer_forward for the gradient dy of y.
// in:  dy, x, y, acts, stats, then per unit w1, w2, w3, wp, γ1, γ2, γ3, γp (8)
// out: dx, then per unit dw1, dw2, dw3, dwp, dγ1, dβ1, dγ2, dβ2, dγ3, dβ3, dγp, dβp (12)
void gl_gunn_layer_backward(const float* const* in, float* const* out, int n, int h, int w, int C,
                            int S, int gradual) {
  SERIALIZED;
  const long rows = (long)n * h * w;
  const int o = C / S;
  // GUNN: dx is the gradient of the state after unit i, then before it (in place); SUNN: the
  // state's gradient stays dy (every unit reads x), and dx = dy + Σ the units' read gradients
  float* dx = out[0];
  gl_copy_block(in[0], C, dx, C, rows, C);
  // gradual: unit i read [new segments < i | old segments ≥ i]; rebuilt from y backwards, one
  // segment at a time
  float* cur = NULL;
  if (gradual) {
    cur = grow(&g_gunn_state, &g_gunn_state_cap, (size_t)rows * C);
    if (!cur) return;
    gl_copy_block(in[2], C, cur, C, rows, C);
  }
  for (int i = S - 1; i >= 0; i--) {
    if (gradual) gl_copy_block(in[1] + i * o, C, cur + i * o, C, rows, o);
    const float* uin[16];
    float* uout[13];
    float* acts[5];
    uin[GB_DOUT] = gradual ? dx : in[0];
    uin[GB_READ] = gradual ? cur : in[1];
    for (int k = 0; k < 8; k++) uin[GB_W1 + k] = in[5 + 8 * i + k];
    unit_acts((float*)in[3], rows, o, i, acts);
    for (int k = 0; k < 5; k++) uin[GB_H1P + k] = acts[k];
    uin[GB_STATS] = in[4] + (size_t)i * 18 * o;
    uout[GD_READ] = dx;
    for (int k = 0; k < 12; k++) uout[GD_W1 + k] = out[1 + 12 * i + k];
    gunn_unit_backward(uin, uout, n, h, w, C, o, i * o, 1);
  }
}

// ---------------------------------------------------------------------------------------------
// A gradually updated block whose updates *replace* their segment (the W4 workload's block):
// unit j reads the whole state as updated so far, a_j = ReLU(BN(conv3×3(state, k_j))) (C → o
// channels, 'same', no bias, BN in training mode), and a_j overwrites segment j; y = state + x.
// As stock ops every unit costs a slice, a concat, a split and several full-state adds each way
// (half the W4 time at 1 thread); here the state is updated in place and the gradient of the
// state is accumulated in place (by the input-gradient convolution itself where Winograd runs).
// in:  x [rows, C], then per unit kernel [3,3,C,o], γ [o], β [o]
// out: y [rows, C]; acts [rows·(S·o + C)]: per unit z_j (the convolution, [rows, o]), then the
//      final state [a_0 | … | a_{S−1}] [rows, C]; stats [S, 3o]: per unit mean | biased variance |
//      1/√(var + ε)

void gl_gunn_block_forward(const float* const* in, float* const* out, int n, int h, int w, int C,
                           int S, float eps) {
  SERIALIZED;
  const long rows = (long)n * h * w;
  const int o = C / S;
  const float* x = in[0];
  float* state = out[1] + (size_t)rows * C;  // S·o = C values of z a row come first
  float* a = grow(&g_gunn_buf, &g_gunn_cap, (size_t)rows * o);
  if (!a) return;
  gl_copy_block(x, C, state, C, rows, C);
  const int threads = memory_threads((double)rows * o);
  for (int j = 0; j < S; j++) {
    float* z = out[1] + (size_t)j * rows * o;
    float* st = out[2] + (size_t)3 * j * o;
    gl_conv2d(state, in[1 + 3 * j], z, n, h, w, C, 3, 3, o, h, w, 1, 1, 1, 1, 1, 1, NULL, 0, 0.f);
    gl_bn_forward(z, in[2 + 3 * j], in[3 + 3 * j], a, st, st + o, st + 2 * o, rows, o, eps);
    // ReLU, written over segment j
#pragma omp parallel for schedule(static) num_threads(threads)
    for (long r = 0; r < rows; r++) {
      const float* restrict ar = a + (size_t)r * o;
      float* restrict sr = state + (size_t)r * C + (size_t)j * o;
#pragma omp simd
      for (int k = 0; k < o; k++) sr[k] = ar[k] > 0.f ? ar[k] : 0.f;
    }
  }
  gl_binary(state, x, out[0], (long)rows * C, (long)rows * C, 0);  // y = state + x
}

// Backward of gl_gunn_block_forward for the gradient dy of y.
// in:  dy, x, acts, stats, then per unit kernel, γ
// out: dx, then per unit dkernel, dγ, dβ
void gl_gunn_block_backward(const float* const* in, float* const* out, int n, int h, int w, int C,
                            int S) {
  SERIALIZED;
  const long rows = (long)n * h * w;
  const int o = C / S;
  const float* dy = in[0];
  const float* x = in[1];
  const float* last = in[2] + (size_t)rows * C;  // the final state [a_0 | … | a_{S−1}]
  // the state each unit read, rebuilt backwards from the final one: unit j read the new
  // segments < j and x's segments ≥ j
  float* cur = grow(&g_gunn_state, &g_gunn_state_cap, (size_t)rows * C);
  const int fused_acc = backprop_input_accumulates(C, o);
  float* tmp = grow(&g_gunn_buf, &g_gunn_cap, (size_t)rows * ((fused_acc ? 0 : C) + 2 * o));
  if (!cur || !tmp) return;
  float* g = tmp;
  float* dz = g + (size_t)rows * o;
  float* dxc = dz + (size_t)rows * o;  // one unit's input gradient, where it cannot accumulate
  gl_copy_block(last, C, cur, C, rows, C);
  // ds: the gradient of the state after unit j, kept in dx until the residual's dy is added
  float* ds = out[0];
  gl_copy_block(dy, C, ds, C, rows, C);
  // a segment's pass strides through three whole-state arrays: threaded by the state's size
  const int state_threads = memory_threads((double)rows * C);
  for (int j = S - 1; j >= 0; j--) {
    const float* z = in[2] + (size_t)j * rows * o;
    const float* st = in[3] + (size_t)3 * j * o;
    const int s0 = j * o;
    // cur's segment j back to x's; g = the gradient of a_j through its ReLU. Segment j was
    // overwritten by unit j, so its old value reaches the output only through unit j's read:
    // its gradient starts again from zero.
#pragma omp parallel for schedule(static) num_threads(state_threads)
    for (long r = 0; r < rows; r++) {
      const size_t at = (size_t)r * C + s0;
      float* restrict dr = ds + at;
      float* restrict cr = cur + at;  // holds a_j until it is restored here
      const float* restrict xr = x + at;
      float* restrict gr = g + (size_t)r * o;
#pragma omp simd
      for (int k = 0; k < o; k++) {
        gr[k] = cr[k] > 0.f ? dr[k] : 0.f;
        dr[k] = 0.f;
        cr[k] = xr[k];
      }
    }
    gl_bn_backward(z, g, in[5 + 2 * j], st, st + 2 * o, dz, out[2 + 3 * j], out[3 + 3 * j], rows, o);
    gl_conv2d_backprop_filter(cur, dz, out[1 + 3 * j], n, h, w, C, 3, 3, o, h, w, 1, 1, 1, 1, 1,
                              1);
    if (fused_acc) {
      backprop_input(dz, in[4 + 2 * j], ds, n, h, w, C, 3, 3, o, h, w, 1, 1, 1, 1, 1, 1, 1);
    } else {
      backprop_input(dz, in[4 + 2 * j], dxc, n, h, w, C, 3, 3, o, h, w, 1, 1, 1, 1, 1, 1, 0);
      gl_binary(ds, dxc, ds, (long)rows * C, (long)rows * C, 0);
    }
  }
  gl_binary(ds, dy, ds, (long)rows * C, (long)rows * C, 0);  // the residual's gradient
}
