"""Types of the public signatures."""

from typing import Any

#: Points: a numpy array (or anything numpy.asarray takes), or a torch or
#: cupy array in host or CUDA memory. The three share no static type, so
#: checkers see Any; the functions check at run time.
Points = Any
