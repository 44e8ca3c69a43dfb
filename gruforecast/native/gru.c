/* The per-step loops of FusedGRUFunction for float32 and float64 tensors on the CPU.
 *
 * Compiled at first use by gruforecast/native/__init__.py (gcc -O3 -march=native; the
 * gate loops vectorise, exp_f32 below included) and called through
 * ctypes with raw pointers. The matrix products call the BLAS `?gemm_` that torch itself
 * uses (MKL, exported by libtorch_cpu), handed over by gru_init, so one call runs the whole
 * time loop: per step one GEMM and one fused pass over the gates, instead of ~7 torch ops.
 *
 * Layout is time-major, as in nn.py: a (T, B, C) buffer holds step t's (B, C) block,
 * contiguous, at offset t*B*C. Equations (PyTorch's convention, gates r, z, n):
 *   r = s(a_r), z = s(a_z), n = tanh(gi_n + r * hn), h' = n + z (h - n), hn = W_hn h + b_hn.
 */
#include <math.h>
#include <stddef.h>

typedef void (*sgemm_t)(const char*, const char*, const int*, const int*, const int*,
                        const float*, const float*, const int*, const float*, const int*,
                        const float*, float*, const int*);
typedef void (*dgemm_t)(const char*, const char*, const int*, const int*, const int*,
                        const double*, const double*, const int*, const double*, const int*,
                        const double*, double*, const int*);
static sgemm_t sgemm_ptr = 0;
static dgemm_t dgemm_ptr = 0;

void gru_init(void* sgemm, void* dgemm) {
    sgemm_ptr = (sgemm_t)sgemm;
    dgemm_ptr = (dgemm_t)dgemm;
}

/* Row-major C (m x n, ldc) += op(A) (m x k) . op(B) (k x n), via column-major BLAS:
 * C^T = op(B)^T op(A)^T, so the operands swap places. */
#define GEMM_RM(TYPE, FN, ta, tb, m, n, k, A, lda, B, ldb, C, ldc) do { \
    const TYPE one = 1; const int m_ = (m), n_ = (n), k_ = (k);           \
    const int lda_ = (lda), ldb_ = (ldb), ldc_ = (ldc);                   \
    FN(tb, ta, &n_, &m_, &k_, &one, B, &ldb_, A, &lda_, &one, C, &ldc_);  \
} while (0)

/* exp for float32 in plain arithmetic, so that gcc vectorises the gate loops without
 * -ffast-math (which, linked into a shared library, would switch the whole process to
 * flush-to-zero). Cephes' expf: x = n ln2 + r with |r| <= ln2/2 (Cody-Waite split),
 * e^r by a degree-6 polynomial, times 2^n built in the exponent bits; about 1 ulp.
 * The clamp keeps 2^n a normal number: sigmoid and tanh saturate long before it bites. */
static inline float exp_f32(float x) {
    x = x > 88.37f ? 88.37f : x;
    x = x < -87.33f ? -87.33f : x;
    float n = (x * 1.44269504088896341f + 12582912.0f) - 12582912.0f; /* round(x / ln2) */
    float r = x - n * 0.693359375f + n * 2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    union { int i; float f; } scale = { ((int)n + 127) << 23 };
    return p * scale.f;
}

#define DEFINE_GRU(TYPE, SUF, EXP, FN)                                                        \
/* One row (B values) of one step's gate math; a separate function so that gcc sees plain     \
 * restrict pointers and vectorises it (exp through libmvec). */                               \
static void fwd_row_##SUF(int B, TYPE* restrict r, TYPE* restrict z, const TYPE* restrict hn,  \
                          const TYPE* restrict gi, const TYPE* restrict hp,                    \
                          TYPE* restrict nk, TYPE* restrict hk) {                              \
    for (int b = 0; b < B; b++) {                                                              \
        TYPE rv = 1 / (1 + EXP(-r[b]));                                                        \
        TYPE zv = 1 / (1 + EXP(-z[b]));                                                        \
        TYPE nv = 2 / (1 + EXP(-2 * (gi[b] + rv * hn[b]))) - 1; /* tanh; overflow gives -1 */ \
        r[b] = rv;                                                                             \
        z[b] = zv;                                                                             \
        nk[b] = nv;                                                                            \
        hk[b] = nv + zv * (hp[b] - nv);                                                        \
    }                                                                                          \
}                                                                                              \
                                                                                               \
static void bwd_row_##SUF(int B, const TYPE* restrict dh, const TYPE* restrict r,              \
                          const TYPE* restrict z, const TYPE* restrict hn,                     \
                          const TYPE* restrict n, const TYPE* restrict hp,                     \
                          const TYPE* restrict go, TYPE* restrict dn_in, TYPE* restrict dr,    \
                          TYPE* restrict dz, TYPE* restrict dn_h, TYPE* restrict dp) {         \
    for (int b = 0; b < B; b++) {                                                              \
        TYPE d = dh[b], rv = r[b], zv = z[b], nv = n[b];                                       \
        TYPE da_n = d * (1 - zv) * (1 - nv * nv);                                              \
        dn_in[b] = da_n;                                                                       \
        dr[b] = da_n * hn[b] * rv * (1 - rv);                                                  \
        dz[b] = d * (hp[b] - nv) * zv * (1 - zv);                                              \
        dn_h[b] = da_n * rv;                                                                   \
        dp[b] = d * zv + go[b];                                                                \
    }                                                                                          \
}                                                                                              \
                                                                                               \
/* gh (T, B, 3H): in [a_r + ..., a_z + ..., b_hn] without the recurrent part; out: [r, z, hn] \
 * gin (T, B, H): W_in x + b_in.  n: (T, B, H) when save, else (1, B, H).  out (T, B, H). */  \
void gru_forward_##SUF(int T, int B, int H, TYPE* gh, const TYPE* gin, const TYPE* whh,       \
                       const TYPE* h0, TYPE* n, int save, TYPE* out) {                        \
    const long BH = (long)B * H, G = 3L * H;                                                   \
    const TYPE* h = h0;                                                                        \
    for (long t = 0; t < T; t++) {                                                             \
        TYPE* g = gh + t * B * G;                                                              \
        /* (B, 3H) += h (B, H) . W_hh^T (H, 3H): the three recurrent projections at once */   \
        GEMM_RM(TYPE, FN, "N", "T", B, 3 * H, H, h, H, whh, H, g, 3 * H);                      \
        TYPE* nt = n + (save ? t * BH : 0);                                                    \
        TYPE* ho = out + t * BH;                                                               \
        const TYPE* gi = gin + t * BH;                                                         \
        for (long b = 0; b < B; b++) {                                                         \
            TYPE* gb = g + b * G;                                                              \
            fwd_row_##SUF(H, gb, gb + H, gb + 2 * H, gi + b * H, h + b * H, nt + b * H,        \
                          ho + b * H);                                                         \
        }                                                                                      \
        h = ho;                                                                                \
    }                                                                                          \
}                                                                                              \
                                                                                               \
/* D (T, B, 4H) receives [da_n, dgh_r, dgh_z, dgh_n] per row: columns 0..3H are the input     \
 * pre-activation gradients (n, r, z order), columns H..4H the recurrent ones (r, z, n).       \
 * d_out: element (t, b, k) at d_out[t * st + b * sb + k], or NULL; d_hT (B, H) or NULL;       \
 * work1, work2, zeros, d_h0: (B, H). */                                                       \
void gru_backward_##SUF(int T, int B, int H, const TYPE* gh, const TYPE* n, const TYPE* out,  \
                        const TYPE* h0, const TYPE* d_out, long st, long sb, const TYPE* d_hT,\
                        const TYPE* whh, TYPE* D, TYPE* work1, TYPE* work2, const TYPE* zeros,\
                        TYPE* d_h0) {                                                         \
    const long BH = (long)B * H, G = 3L * H, G4 = 4L * H;                                      \
    TYPE* dh = work1;                                                                          \
    TYPE* dprev = work2;                                                                       \
    for (long b = 0; b < B; b++)                                                               \
        for (long k = 0; k < H; k++)                                                           \
            dh[b * H + k] = (d_out ? d_out[(T - 1) * st + b * sb + k] : 0)                     \
                          + (d_hT ? d_hT[b * H + k] : 0);                                      \
    for (long t = T - 1; t >= 0; t--) {                                                        \
        const TYPE* hprev = t > 0 ? out + (t - 1) * BH : h0;                                   \
        TYPE* dst = t > 0 ? dprev : d_h0;                                                      \
        TYPE* Dt = D + t * B * G4;                                                             \
        for (long b = 0; b < B; b++) {                                                         \
            const TYPE* gb = gh + (t * B + b) * G;                                             \
            const TYPE* go = (d_out && t > 0) ? d_out + (t - 1) * st + b * sb : zeros + b * H; \
            TYPE* Db = Dt + b * G4;                                                            \
            bwd_row_##SUF(H, dh + b * H, gb, gb + H, gb + 2 * H, n + t * BH + b * H,           \
                          hprev + b * H, go, Db, Db + H, Db + 2 * H, Db + 3 * H, dst + b * H); \
        }                                                                                      \
        /* dh_prev (B, H) += dgh (B, 3H) . W_hh (3H, H) */                                     \
        GEMM_RM(TYPE, FN, "N", "N", B, H, 3 * H, Dt + H, 4 * H, whh, H, dst, H);               \
        TYPE* tmp = dh;                                                                        \
        dh = dprev;                                                                            \
        dprev = tmp;                                                                           \
    }                                                                                          \
}

DEFINE_GRU(float, f32, exp_f32, sgemm_ptr)
DEFINE_GRU(double, f64, exp, dgemm_ptr)
