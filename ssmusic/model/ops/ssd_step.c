/* One Mamba2 recurrent step on the CPU, in one pass over the state (see ssmusic/model/ops/cpu_step.py).

   Per row r and head h, with a = exp(dt * A[h]) and u = dt * x[p]:
       S[p, n] <- a * S[p, n] + u * B[n]          y[p] = sum_n S[p, n] * C[n] + D[h] * x[p]
   The new state row is read out while it is still in registers, so the state is read once and
   written once; the PyTorch reference (ops.scan.ssd_step) takes three passes over it.
   Arrays are contiguous: state [R, H, P, N] (float32, or bfloat16 in ssd_step_bf16: stored rounded
   to nearest even, computed in float32), x/y [R, H, P], dt [R, H], A/D [H], B/C [R, G, N] float32
   (heads h*G/H .. share group g). D may be NULL. */

#include <math.h>
#include <stdint.h>
#include <string.h>

static inline float load_f32(const float *s) { return *s; }
static inline void store_f32(float *s, float v) { *s = v; }

static inline float load_bf16(const uint16_t *s) {
    uint32_t bits = (uint32_t)*s << 16;
    float v;
    memcpy(&v, &bits, sizeof v);
    return v;
}

static inline void store_bf16(uint16_t *s, float v) {
    uint32_t bits;
    memcpy(&bits, &v, sizeof bits);
    /* round to nearest even, as torch's float -> bfloat16 (NaN stays NaN) */
    bits = ((bits & 0x7fffffffu) > 0x7f800000u) ? (bits | 0x00400000u) : bits + 0x7fffu + ((bits >> 16) & 1u);
    *s = (uint16_t)(bits >> 16);
}

#define SSD_STEP(NAME, STATE_T, LOAD, STORE)                                                      \
    void NAME(STATE_T *restrict state, const float *restrict x, const float *restrict dt,         \
              const float *restrict A, const float *restrict B, const float *restrict C,          \
              const float *restrict D, float *restrict y, int64_t rows, int64_t heads,            \
              int64_t headdim, int64_t d_state, int64_t groups) {                                 \
        const int64_t per_group = heads / groups;                                                 \
        for (int64_t r = 0; r < rows; r++) {                                                      \
            for (int64_t h = 0; h < heads; h++) {                                                 \
                const int64_t rh = r * heads + h;                                                 \
                const float step = dt[rh];                                                        \
                const float decay = expf(step * A[h]);                                            \
                const float skip = D ? D[h] : 0.0f;                                               \
                const float *b = B + (r * groups + h / per_group) * d_state;                      \
                const float *c = C + (r * groups + h / per_group) * d_state;                      \
                for (int64_t p = 0; p < headdim; p++) {                                           \
                    STATE_T *s = state + (rh * headdim + p) * d_state;                            \
                    const float xp = x[rh * headdim + p];                                         \
                    const float u = step * xp;                                                    \
                    float acc = 0.0f;                                                             \
                    _Pragma("omp simd reduction(+ : acc)")                                        \
                    for (int64_t n = 0; n < d_state; n++) {                                       \
                        const float v = LOAD(s + n) * decay + u * b[n];                           \
                        STORE(s + n, v);                                                          \
                        acc += v * c[n];                                                          \
                    }                                                                             \
                    y[rh * headdim + p] = acc + skip * xp;                                        \
                }                                                                                 \
            }                                                                                     \
        }                                                                                         \
    }

SSD_STEP(ssd_step_f32, float, load_f32, store_f32)

#if defined(__AVX512F__) && defined(__AVX512BF16__) && !defined(SSD_STEP_GENERIC)
/* The bfloat16 state with AVX-512: 16 entries per instruction, converted by the CPU's own
   round-to-nearest-even instruction. The portable loop below took 2.4x as long on a Xeon with
   AVX512-BF16 (6.6 against 2.8 ms per layer at 128 rows: benchmarks/state_step.py, results/state_step.json). */
#include <immintrin.h>

void ssd_step_bf16(uint16_t *restrict state, const float *restrict x, const float *restrict dt,
                   const float *restrict A, const float *restrict B, const float *restrict C,
                   const float *restrict D, float *restrict y, int64_t rows, int64_t heads,
                   int64_t headdim, int64_t d_state, int64_t groups) {
    const int64_t per_group = heads / groups;
    const int64_t vectors = d_state / 16 * 16;
    for (int64_t r = 0; r < rows; r++) {
        for (int64_t h = 0; h < heads; h++) {
            const int64_t rh = r * heads + h;
            const float step = dt[rh];
            const float decay = expf(step * A[h]);
            const float skip = D ? D[h] : 0.0f;
            const float *b = B + (r * groups + h / per_group) * d_state;
            const float *c = C + (r * groups + h / per_group) * d_state;
            const __m512 decay16 = _mm512_set1_ps(decay);
            for (int64_t p = 0; p < headdim; p++) {
                uint16_t *s = state + (rh * headdim + p) * d_state;
                const float xp = x[rh * headdim + p];
                const float u = step * xp;
                const __m512 u16 = _mm512_set1_ps(u);
                __m512 acc16 = _mm512_setzero_ps();
                for (int64_t n = 0; n < vectors; n += 16) {
                    const __m512i wide = _mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)(s + n)));
                    const __m512 old = _mm512_castsi512_ps(_mm512_slli_epi32(wide, 16));
                    const __m512 v = _mm512_fmadd_ps(old, decay16, _mm512_mul_ps(u16, _mm512_loadu_ps(b + n)));
                    const __m256bh rounded = _mm512_cvtneps_pbh(v);
                    _mm256_storeu_si256((__m256i *)(s + n), (__m256i)rounded);
                    acc16 = _mm512_fmadd_ps(v, _mm512_loadu_ps(c + n), acc16);
                }
                float acc = _mm512_reduce_add_ps(acc16);
                for (int64_t n = vectors; n < d_state; n++) {
                    const float v = load_bf16(s + n) * decay + u * b[n];
                    store_bf16(s + n, v);
                    acc += v * c[n];
                }
                y[rh * headdim + p] = acc + skip * xp;
            }
        }
    }
}
#else
SSD_STEP(ssd_step_bf16, uint16_t, load_bf16, store_bf16)
#endif
