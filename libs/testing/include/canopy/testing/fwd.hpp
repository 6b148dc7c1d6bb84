#pragma once
// Forward declarations of canopy::testing's public types.

namespace canopy::testing {
class virtual_clock;
class log_capture;
}  // namespace canopy::testing
