#pragma once
/// Everything of the codec in one include.

#include <tern/protocol/decoder.hpp>
#include <tern/protocol/encoder.hpp>
#include <tern/protocol/error.hpp>
#include <tern/protocol/packets.hpp>
#include <tern/protocol/properties.hpp>
#include <tern/protocol/reason_code.hpp>
#include <tern/protocol/topic.hpp>
#include <tern/protocol/types.hpp>
