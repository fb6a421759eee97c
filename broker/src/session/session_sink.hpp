#pragma once
// What a session needs from whatever carries its messages to the client: a network connection
// today, the bridge's pool of outgoing connections later (STYLE.md §10).

#include <cstddef>
#include <cstdint>

namespace tern::broker {

struct outbound_message;

/// The session's only view of its connection. A session holds at most one sink, set while a
/// client is attached, and calls it on the session's worker only.
///
/// Thread contract: owner worker only (the worker holding the session and the sink).
class session_sink {
public:
    /// Room for a QoS 0 message now (the sink is not backed up). QoS 0 messages are queued on
    /// the session while it says no and dropped beyond the session's queue limits.
    virtual bool accepts_qos0() const noexcept = 0;
    /// How many QoS 1/2 messages may be in flight at once (the client's Receive Maximum
    /// within max_inflight_messages).
    virtual std::size_t inflight_window() const noexcept = 0;
    /// Sends `out` under `packet_id` (0 for QoS 0), with DUP set for a resend. False when the
    /// message is not sent to this client (expired, or over its Maximum Packet Size); the
    /// session then forgets it.
    virtual bool send_publish(const outbound_message& out, std::uint16_t packet_id, bool dup) = 0;
    /// Sends PUBREL for a QoS 2 message the client has received (PUBREC seen). Like every
    /// packet that reveals a stored change, it waits until the change is durable.
    virtual void send_pubrel(std::uint16_t packet_id) = 0;
    /// The packet just sent reveals a change written to the durable store: hold it (and what
    /// follows it) back until that change is on disk. No effect with the memory store.
    virtual void hold_until_durable() = 0;
    /// The sink is going away: the session stops sending to it.
    virtual bool closing() const noexcept = 0;
    /// The next queued message may go out now. A `profile aws-iot` connection replays what a
    /// persistent session stored while it was away at AWS's 10 a second, and says no in
    /// between (calling session::send_queued() again from its tick); others always say yes.
    virtual bool may_send_queued() noexcept { return true; }
    /// Another client took the session over [MQTT-3.1.4-2]: the sink detaches from the
    /// session (which is about to move) and ends its side. `session_continues`: the new
    /// connection resumes the session (no Clean Start, and the session outlives a connection).
    virtual void take_over(bool session_continues) = 0;

protected:
    ~session_sink() = default; // sessions never own their sink
};

} // namespace tern::broker
