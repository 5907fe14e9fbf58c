# Compiles the Hopper FlashAssign kernels for sm_90a and fails if ptxas had to
# serialise wgmma (its "Potential Performance Loss" notes, C7510-C7515): the
# kernels then still give the right labels but lose the overlap of the fold
# with the tensor cores (20-30% on an H200), which no correctness test sees.
#   cmake -DNVCC=... -DSRC=... -DINCLUDES="a;b" -DOUT=... -P check_wgmma_pipelined.cmake
set(args -std=c++17 -O3 --expt-relaxed-constexpr -DFLASHKMEANS_WITH_CUDA=1
    -gencode=arch=compute_90a,code=sm_90a -Xptxas -v -cubin -o ${OUT})
foreach(dir IN LISTS INCLUDES)
  list(APPEND args -I${dir})
endforeach()
execute_process(COMMAND ${NVCC} ${args} ${SRC}
                RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
set(log "${out}${err}")
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "nvcc failed (${rc}):\n${log}")
endif()
# the check means something only if the wgmma kernels were compiled at all
if(NOT log MATCHES "Compiling entry function '[^']*flash_assign_sm90_kernel")
  message(FATAL_ERROR "no sm_90a FlashAssign kernel in ptxas' output:\n${log}")
endif()
string(REGEX MATCHALL "[^\n]*Potential Performance Loss[^\n]*" lost "${log}")
if(lost)
  list(JOIN lost "\n" lost)
  message(FATAL_ERROR "ptxas serialised wgmma:\n${lost}")
endif()
message(STATUS "wgmma pipelined in every sm_90a kernel")
