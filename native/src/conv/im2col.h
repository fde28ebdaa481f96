// The column matrix of a convolution and its adjoint, for a range of output positions of one image.
#pragma once
#include <cstddef>

#include "conv/conv-ukernel.h"
#include "kiln/conv.h"

namespace kiln {

// Writes the columns of output positions [j0, j0 + n) (row-major over OH x OW) of one image:
// col[r * ld + (j - j0)] with r = (c * KH + kh) * KW + kw, c < channels, the input value under
// that tap, or 0 where it falls in padding. `input` points at the first of the `channels` planes.
// Runs on the active ISA.
void im2col(const Conv2dGeometry& g, size_t channels, const float* input, size_t j0, size_t n,
            float* col, size_t ld);

// The adjoint of im2col: adds each column entry to the input position it was read from (entries
// over padding are dropped). grad_input must be initialised by the caller.
void col2im_add(const Conv2dGeometry& g, size_t channels, const float* col, size_t ld, size_t j0,
                size_t n, float* grad_input);

// The same on the kernels of one table (a caller that read dispatch() once for a whole
// operation passes them down); the overloads above read the active table.
void im2col(const F32ConvKernels& k, const Conv2dGeometry& g, size_t channels, const float* input, size_t j0,
            size_t n, float* col, size_t ld);
void col2im_add(const F32ConvKernels& k, const Conv2dGeometry& g, size_t channels, const float* col, size_t ld,
                size_t j0, size_t n, float* grad_input);

// Whole-plane variants (j0 = 0, n = OH * OW), one per ISA file; im2col and col2im_add call the
// active dispatch table's. The scalar ones (im2col-reference.cc) are the fallback and the oracle.
void f32_im2col_plane_scalar(const Conv2dGeometry& g, size_t channels, const float* input, float* col, size_t ld);
void f32_col2im_plane_add_scalar(const Conv2dGeometry& g, size_t channels, const float* col, size_t ld, float* grad_input);
void f32_im2col_plane_avx2(const Conv2dGeometry& g, size_t channels, const float* input, float* col, size_t ld);
void f32_im2col_plane_avx512(const Conv2dGeometry& g, size_t channels, const float* input, float* col, size_t ld);
void f32_col2im_plane_add_avx2(const Conv2dGeometry& g, size_t channels, const float* col, size_t ld, float* grad_input);
void f32_col2im_plane_add_avx512(const Conv2dGeometry& g, size_t channels, const float* col, size_t ld, float* grad_input);

// The table's gather_even (conv/conv-ukernel.h): the stride-2 pieces of rows in column tiles.
void f32_gather_even_scalar(const float* src, size_t n, float* dst);
void f32_gather_even_avx2(const float* src, size_t n, float* dst);
void f32_gather_even_avx512(const float* src, size_t n, float* dst);

}  // namespace kiln
