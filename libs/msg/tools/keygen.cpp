// canopy-keygen: CURVE key pairs for Canopy's sockets (docs/security.md).
//
//   canopy-keygen                     prints a new pair: public, then secret (Z85)
//   canopy-keygen cache --dir keys    writes keys/cache.key (secret, 0600) and keys/cache.pub
//   canopy-keygen --public cache.key  prints the public key of a secret key file
#include <CLI/CLI.hpp>

#include <cstdio>
#include <iostream>

#include "canopy/msg/curve.hpp"

int main(int argc, char** argv) {
  CLI::App app{"canopy-keygen: CURVE key pairs for Canopy (see docs/security.md)"};
  std::string name, directory = ".", public_of;
  app.add_option("name", name, "write NAME.key (secret, mode 0600) and NAME.pub instead of printing");
  app.add_option("--dir", directory, "where to write the key files")->check(CLI::ExistingDirectory);
  app.add_option("--public", public_of, "print the public key of this secret key file")->check(CLI::ExistingFile);
  app.set_version_flag("--version", "canopy-keygen 0.1");
  CLI11_PARSE(app, argc, argv);

  if (!public_of.empty()) {
    auto secret = canopy::msg::read_curve_key_file(public_of);
    if (!secret) {
      std::cerr << "canopy-keygen: " << secret.error().to_string() << "\n";
      return 1;
    }
    auto pub = canopy::msg::curve_public_key(*secret);
    if (!pub) {
      std::cerr << "canopy-keygen: " << pub.error().to_string() << "\n";
      return 1;
    }
    std::cout << *pub << "\n";
    return 0;
  }
  auto keys = canopy::msg::generate_curve_keypair();
  if (!keys) {
    std::cerr << "canopy-keygen: " << keys.error().to_string() << "\n";
    return 1;
  }
  if (name.empty()) {
    std::cout << "public " << keys->public_key << "\nsecret " << keys->secret_key << "\n";
    return 0;
  }
  if (auto written = canopy::msg::write_curve_key_files(*keys, directory, name); !written) {
    std::cerr << "canopy-keygen: " << written.error().to_string() << "\n";
    return 1;
  }
  std::cout << "wrote " << directory << "/" << name << ".key (secret) and " << directory << "/" << name
            << ".pub\npublic " << keys->public_key << "\n";
  return 0;
}
