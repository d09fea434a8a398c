#ifndef SEGVIEW_BLAS_SHIM_H
#define SEGVIEW_BLAS_SHIM_H

/// Makes sure OpenBLAS runs the kernel this CPU can run fastest and uses `threads` threads.
///
/// OpenBLAS picks its kernels from the CPU model number; releases older than the CPU (Debian 12
/// ships 0.3.21) do not know recent Xeons and fall back to the SSE3 "Prescott" kernel, 3-4x slower.
/// When that happens and the user has not chosen a core with OPENBLAS_CORETYPE, we choose by
/// instruction set instead: SkylakeX for AVX-512, Haswell for AVX2+FMA.
/// Returns the name of the core in use.
const char *seg_blas_configure(int threads);

#endif
