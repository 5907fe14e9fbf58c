/**
 * Several GPUs of one process: data-parallel Lloyd with one rank per GPU,
 * each on its own thread, over NCCL communicators made by ncclCommInitAll.
 * Link flashkmeans::nccl (built when CMake finds CUDA and NCCL). The result
 * is the one of ranks trained on the row shards (Communicator.h): the same
 * labels and centroids as one GPU to float rounding, bit for bit on
 * integer-valued points, and the same bits run to run for a given device
 * count.
 */
#pragma once

#include <flashkmeans/Clustering.h>

#include <cstdint>
#include <vector>

namespace flashkmeans {

/** Trains `clus` on n x d host points of `dtype` split across `devices`
 * (distinct CUDA ordinals), rank r taking the r-th of R contiguous row
 * ranges as equal as they can be (rows [n r / R, n (r + 1) / R)), weights
 * alike. clus.options give every other setting (the backend must be CUDA or
 * auto; no comm of its own); clus.centroids, when set, are the initial ones
 * on every rank. clus ends as after Clustering::train (centroids, stats,
 * memory_plan, ...), with last_labels the ranks' labels in rank order, and
 * `index` holds the centroids. The calling thread runs rank 0, so it is the
 * one that sees faiss::InterruptCallback's signals; the ranks agree on an
 * interrupt each iteration. Bad input throws InputError before any GPU
 * work; a rank's error is rethrown here after every rank has stopped. */
void train_on_devices(Clustering& clus, const std::vector<int>& devices, int64_t n, const void* x,
                      DType dtype, faiss::Index& index, const float* weights = nullptr);

} // namespace flashkmeans
