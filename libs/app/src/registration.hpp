#pragma once
// Internal: app.registration, the child that keeps an app registered with the registry app
// (docs/protocol.md "registry"): register its name under a lease, renew it at a third of
// the ttl, register again when the lease is gone (the registry restarted, or we were away
// too long), retry with backoff while the registry is unreachable — the app keeps working
// meanwhile and info.registry says where it stands. On a graceful stop it unregisters.

#include <string>

#include "canopy/app/application.hpp"

namespace canopy::app {

child_spec registration_spec(context* ctx, std::string endpoint, std::string events_endpoint, std::string version);
void write_registration(wire::packer& p, const registration_status& s);

}  // namespace canopy::app
