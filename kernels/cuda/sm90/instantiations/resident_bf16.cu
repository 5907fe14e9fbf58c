// Instantiations: the resident kernel with the points in shared memory, bf16,
// d of 1 to 4 chunks (d <= 256).
#include "../launch_template.cuh"

FK_SM90_LAUNCH(__nv_bfloat16, Resident, 1);
FK_SM90_LAUNCH(__nv_bfloat16, Resident, 2);
FK_SM90_LAUNCH(__nv_bfloat16, Resident, 3);
FK_SM90_LAUNCH(__nv_bfloat16, Resident, 4);
