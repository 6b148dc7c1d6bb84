// canopy-task-runner: see canopy/task_app/app.hpp and docs/protocol.md "task_runner".
#include "canopy/app/main.hpp"
#include "canopy/task_app/app.hpp"

int main(int argc, char** argv) {
  canopy::task_app::app app;
  return canopy::app::run(argc, argv, app);
}
