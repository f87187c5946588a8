// grove: stackful fibers on one cooperative hub loop per OS thread.
#pragma once

#include <grove/dns.hpp>
#include <grove/fiber.hpp>
#include <grove/io.hpp>
#include <grove/net.hpp>
#include <grove/sync.hpp>
#include <grove/timeout.hpp>
