# ctest Mpi.Cli.np*: `mpirun -np NP flashkmeans train` on a float32 .npy
# (mapped; each rank trains on its row range, rank 0 writes) must write the
# same centroid and label files, byte for byte, as one process. The points
# are small integers, so every cluster sum is exact in any order. assign
# under mpirun fails on every rank with a message.
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
# the other commands run in one process: every rank refuses, none hangs
execute_process(COMMAND ${MPIEXEC} -np ${NP} ${FLAGS} ${CLI} assign ${WORK}/x.npy
                --centroids ${WORK}/c1.npy -o ${WORK}/a.npy
                RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
if(rc EQUAL 0 OR NOT out MATCHES "only train runs on several MPI ranks")
  message(FATAL_ERROR "assign under mpirun: status ${rc}\n${out}")
endif()
message(STATUS "cli ranks ok")
