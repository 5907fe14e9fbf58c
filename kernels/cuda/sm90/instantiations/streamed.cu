// Instantiations: the streamed kernel (any d), every element type, alone and
// in CTA pairs.
#include "../launch_template.cuh"

FK_SM90_LAUNCH(float, Streamed, 0, false, 1);
FK_SM90_LAUNCH(float, Streamed, 0, false, 2);
FK_SM90_LAUNCH(__half, Streamed, 0, false, 1);
FK_SM90_LAUNCH(__half, Streamed, 0, false, 2);
FK_SM90_LAUNCH(__nv_bfloat16, Streamed, 0, false, 1);
FK_SM90_LAUNCH(__nv_bfloat16, Streamed, 0, false, 2);
