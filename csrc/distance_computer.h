// The faiss::DistanceComputer of an IndexDPQ (IndexHNSW storage,
// IndexRefine): distances at the index's search_levels, computed as
// search() returns them (scan/rescore.h), so the two agree bit for bit.
#pragma once

#include "faiss_abi.h"

namespace dpq {

class IndexDPQ;

// Holds the index's read lock for its lifetime: one lock per computer, none
// per distance. Adding to the index waits until it is destroyed.
faiss::DistanceComputer* make_distance_computer(const IndexDPQ& index);

}  // namespace dpq
