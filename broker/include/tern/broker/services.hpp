#pragma once
/// The services a broker is built from (the composition root's inputs, STYLE.md §1): `main()`
/// and tests construct these and hand them to `broker`, so later modules (the durable store,
/// the authenticator, metrics, the bridge) plug in without editing the engine.
///
/// Thread contract: every service passed here must be thread-safe; the broker holds references
/// for its whole lifetime (the caller keeps them alive until the broker is destroyed).

#include <tern/auth/authenticator.hpp>
#include <tern/broker/session_store.hpp>
#include <tern/core/clock.hpp>

namespace tern::broker {

struct broker_services {
    /// Where every deadline and expiry reads "now". Default: the steady clock. Tests pass a
    /// core::manual_clock and advance it.
    const core::clock* clock = &core::default_clock();
    /// Where persistent session state and retained messages are reported (see
    /// session_store.hpp). Null: the in-memory store (state ends with the process).
    session_store* store = nullptr;
    /// Who may connect, publish and subscribe (see tern/auth/authenticator.hpp). Null: the
    /// configuration's allow_anonymous rules (auth::anonymous_policy).
    const auth::authenticator* authenticator = nullptr;
};

} // namespace tern::broker
