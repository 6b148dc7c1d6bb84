// canopy-cache: see canopy/cache_app/app.hpp and docs/protocol.md "cache".
#include "canopy/app/main.hpp"
#include "canopy/cache_app/app.hpp"

int main(int argc, char** argv) {
  canopy::cache_app::app app;
  return canopy::app::run(argc, argv, app);
}
