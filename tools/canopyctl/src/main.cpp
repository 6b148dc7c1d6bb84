// canopyctl: see canopy/ctl/ctl.hpp.
#include <iostream>

#include "canopy/ctl/ctl.hpp"

int main(int argc, char** argv) {
  return canopy::ctl::run(std::vector<std::string>(argv + 1, argv + argc), std::cout, std::cerr);
}
