# Compiles the Hopper FlashAssign kernels for sm_90a and fails if ptxas had to
# serialise wgmma (its "Potential Performance Loss" notes, C7510-C7515): the
# kernels then still give the right labels but lose the overlap of the fold
# with the tensor cores (20-30% on an H200), which no correctness test sees.
#   cmake -DNVCC=... -DSRC="a.cu;b.cu" -DINCLUDES="a;b" -DOUT=... -P check_wgmma_pipelined.cmake
# SRC: the files that instantiate the kernels (kernels/cuda/sm90/instantiations),
# each compiled on its own.
set(args -std=c++17 -O3 --expt-relaxed-constexpr -DFLASHKMEANS_WITH_CUDA=1
    -gencode=arch=compute_90a,code=sm_90a -Xptxas -v -cubin -o ${OUT})
foreach(dir IN LISTS INCLUDES)
  list(APPEND args -I${dir})
endforeach()
if(NOT SRC)
  message(FATAL_ERROR "no Hopper kernel sources given (SRC)")
endif()
set(lost "")
foreach(src IN LISTS SRC)
  execute_process(COMMAND ${NVCC} ${args} ${src}
                  RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  set(log "${out}${err}")
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "nvcc failed on ${src} (${rc}):\n${log}")
  endif()
  # the check means something only if the wgmma kernels were compiled at all
  if(NOT log MATCHES "Compiling entry function '[^']*flash_assign_sm90_[a-z_]*kernel")
    message(FATAL_ERROR "no sm_90a FlashAssign kernel in ptxas' output for ${src}:\n${log}")
  endif()
  string(REGEX MATCHALL "[^\n]*Potential Performance Loss[^\n]*" file_lost "${log}")
  list(APPEND lost ${file_lost})
endforeach()
if(lost)
  list(JOIN lost "\n" lost)
  message(FATAL_ERROR "ptxas serialised wgmma:\n${lost}")
endif()
message(STATUS "wgmma pipelined in every sm_90a kernel")
