// Instantiations: the resident kernel, fp32 as TF32, d of 1 to 4 chunks
// (d <= 128).
#include "../launch_template.cuh"

FK_SM90_LAUNCH(float, Resident, 1);
FK_SM90_LAUNCH(float, Resident, 2);
FK_SM90_LAUNCH(float, Resident, 3);
FK_SM90_LAUNCH(float, Resident, 4);
