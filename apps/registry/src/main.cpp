// canopy-registry: see canopy/registry_app/app.hpp and docs/protocol.md "registry".
#include "canopy/app/main.hpp"
#include "canopy/registry_app/app.hpp"

int main(int argc, char** argv) {
  canopy::registry_app::app app;
  return canopy::app::run(argc, argv, app);
}
