# ctest Mpi.Cli.np*: `mpirun -np NP flashkmeans train` on a float32 .npy
# (mapped; each rank trains on its row range, rank 0 writes) must write the
# same centroid and label files, byte for byte, as one process. The points
# are small integers, so every cluster sum is exact in any order.
# -DCLI= -DMPIEXEC= -DNP= -DFLAGS= (a ;-list) -DPYTHON= -DWORK=
file(MAKE_DIRECTORY ${WORK})
function(run)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "failed (${rc}): ${ARGN}\n${out}")
  endif()
endfunction()
file(WRITE ${WORK}/make_points.py "import numpy as np
r = np.random.default_rng(3)
np.save('${WORK}/x.npy', r.integers(-6, 7, size=(3001, 8)).astype(np.float32))
")
run(${PYTHON} ${WORK}/make_points.py)
set(train train ${WORK}/x.npy -k 24 --backend cpu --niter 15 --quiet)
run(${CLI} ${train} -o ${WORK}/c1.npy --labels ${WORK}/l1.npy)
run(${CMAKE_COMMAND} -E env OMP_NUM_THREADS=1 ${MPIEXEC} -np ${NP} ${FLAGS} ${CLI} ${train}
    -o ${WORK}/c${NP}.npy --labels ${WORK}/l${NP}.npy)
foreach(f c l)
  execute_process(COMMAND ${CMAKE_COMMAND} -E compare_files ${WORK}/${f}1.npy ${WORK}/${f}${NP}.npy
                  RESULT_VARIABLE differ)
  if(differ)
    message(FATAL_ERROR "${f}${NP}.npy (${NP} ranks) differs from ${f}1.npy (one process)")
  endif()
endforeach()
message(STATUS "cli ranks ok")
