// canopy-session-manager: see canopy/session_app/app.hpp and docs/protocol.md "session_manager".
#include "canopy/app/main.hpp"
#include "canopy/session_app/app.hpp"

int main(int argc, char** argv) {
  canopy::session_app::app app;
  return canopy::app::run(argc, argv, app);
}
