/* One Mamba2 recurrent step on the CPU, in one pass over the state (see ssmusic/ops/cpu_step.py).

   Per row r and head h, with a = exp(dt * A[h]) and u = dt * x[p]:
       S[p, n] <- a * S[p, n] + u * B[n]          y[p] = sum_n S[p, n] * C[n] + D[h] * x[p]
   The new state row is read out while it is still in registers, so the state is read once and
   written once; the PyTorch reference (ops.scan.ssd_step) takes three passes over it.
   All arrays are float32 and contiguous: state [R, H, P, N], x/y [R, H, P], dt [R, H], A/D [H],
   B/C [R, G, N] (heads h*G/H .. share group g). D may be NULL. */

#include <math.h>
#include <stdint.h>

void ssd_step_f32(float *restrict state, const float *restrict x, const float *restrict dt,
                  const float *restrict A, const float *restrict B, const float *restrict C,
                  const float *restrict D, float *restrict y, int64_t rows, int64_t heads,
                  int64_t headdim, int64_t d_state, int64_t groups) {
    const int64_t per_group = heads / groups;
    for (int64_t r = 0; r < rows; r++) {
        for (int64_t h = 0; h < heads; h++) {
            const int64_t rh = r * heads + h;
            const float step = dt[rh];
            const float decay = expf(step * A[h]);
            const float skip = D ? D[h] : 0.0f;
            const float *b = B + (r * groups + h / per_group) * d_state;
            const float *c = C + (r * groups + h / per_group) * d_state;
            for (int64_t p = 0; p < headdim; p++) {
                float *s = state + (rh * headdim + p) * d_state;
                const float xp = x[rh * headdim + p];
                const float u = step * xp;
                float acc = 0.0f;
#pragma omp simd reduction(+ : acc)
                for (int64_t n = 0; n < d_state; n++) {
                    const float v = s[n] * decay + u * b[n];
                    s[n] = v;
                    acc += v * c[n];
                }
                y[rh * headdim + p] = acc + skip * xp;
            }
        }
    }
}
