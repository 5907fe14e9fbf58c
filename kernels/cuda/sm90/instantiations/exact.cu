// Instantiations: the exact (3xTF32) kernel, fp32, d of 1 to 4 chunks
// (d <= 128).
#include "../launch_template.cuh"

FK_SM90_LAUNCH(float, Exact3xTF32, 1);
FK_SM90_LAUNCH(float, Exact3xTF32, 2);
FK_SM90_LAUNCH(float, Exact3xTF32, 3);
FK_SM90_LAUNCH(float, Exact3xTF32, 4);
