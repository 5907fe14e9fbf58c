# The vector file formats (vector_io.h: one file per format, on checked file
# access), listed once for tools/CMakeLists.txt and tests/fuzz/CMakeLists.txt,
# which builds them without the rest of the project. Names are relative to
# tools/.
set(FLASHKMEANS_VECTOR_IO_SOURCES
  vector_io.cpp
  vector_io_file.cpp
  vector_io_vecs.cpp
  vector_io_npy.cpp
  vector_io_npy_header.cpp
)
