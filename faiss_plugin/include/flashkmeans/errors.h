/**
 * The error flashkmeans throws for bad input (NaN or Inf in the points,
 * values too large for float32 distances, ...): a faiss::FaissException, so
 * code that catches FAISS's errors catches it too, of its own type so that
 * bindings can report it as the caller's mistake (Python: ValueError).
 */
#pragma once

#include <faiss/impl/FaissException.h>

#include <string>

namespace flashkmeans {

struct InputError : faiss::FaissException {
    explicit InputError(const std::string& msg) : faiss::FaissException(msg) {}
};

} // namespace flashkmeans
