#pragma once
// Order statistics for the bench tools: medians and percentiles of samples.
// Nearest-rank percentiles, so every figure reported is a value that was
// actually measured.

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <vector>

namespace apikeyd::bench {

// The q-quantile (0 < q <= 1) of `samples` by nearest rank; 0 for no samples.
template <class T>
T percentile(std::vector<T> samples, double q) {
    if (samples.empty()) {
        return T{};
    }
    const auto rank = static_cast<size_t>(std::ceil(q * static_cast<double>(samples.size())));
    const size_t index = std::clamp<size_t>(rank, 1, samples.size()) - 1;
    std::nth_element(samples.begin(), samples.begin() + static_cast<std::ptrdiff_t>(index),
                     samples.end());
    return samples[index];
}

template <class T>
T median(std::vector<T> samples) {
    return percentile(std::move(samples), 0.5);
}

}  // namespace apikeyd::bench
