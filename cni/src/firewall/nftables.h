#pragma once
// Nftables: the firewall's one door to the kernel. Commands are libnftables' JSON schema
// ({"nftables": [...]}), so names never need quoting and a whole batch is one transaction.
//
// Thread-safety: one LibNftables per thread (an nft_ctx is not shared); it acts in the
// network namespace of the thread that calls run().

#include <string_view>

#include "error/error.h"
#include "json/json.h"

struct nft_ctx;

namespace fleetlet::cni::firewall {

class Nftables {
 public:
  virtual ~Nftables() = default;
  // Runs `batch` atomically (all or nothing) and returns what nft printed (JSON; an empty
  // object when it printed nothing). kNotFound when an object the batch names does not
  // exist (ENOENT), kInternal with nft's message otherwise.
  virtual Result<Json> run(const Json& batch) = 0;
};

class LibNftables final : public Nftables {
 public:
  LibNftables();
  ~LibNftables() override;
  LibNftables(const LibNftables&) = delete;
  LibNftables& operator=(const LibNftables&) = delete;

  Result<Json> run(const Json& batch) override;

 private:
  nft_ctx* ctx_;
};

}  // namespace fleetlet::cni::firewall
