// Instantiations: the resident kernel with the points in registers, fp16, d of 1
// or 2 chunks (d <= 64, d <= 128), each alone and in CTA pairs, with the scan
// and the max-first fold (launch_regs).
#include "../launch_template.cuh"

FK_SM90_LAUNCH_REGS(__half, 1);
FK_SM90_LAUNCH_REGS(__half, 2);
