// libnftables, loaded on first use (the scheme of common/src/http/lazy_curl.cpp and
// common/src/archive/lazy_archive.cpp): fleetletd links the firewall library for its counters
// and garbage collection, but needs libnftables (and libnftnl, libxtables, libjansson, libgmp,
// libmnl) only when it reads or changes a ruleset; linked directly they are loaded at every
// start. See docs/fleetletd.md, Memory.
//
// Contract: behaves as libnftables itself, except that when libnftables.so.1 cannot be loaded
// nft_ctx_new returns nullptr, nft_run_cmd_from_buffer returns -1, the output buffer is ""
// and the error buffer says why; the rest do nothing. Add any further function called below.
#include <nftables/libnftables.h>

#include <string>

#include "os/lazy_library.h"

namespace {

// Loaded on the first call of any function below; never unloaded.
const fleetlet::os::LazyLibrary& libnftables() {
  static const fleetlet::os::LazyLibrary lib("libnftables.so.1", "libnftables");
  return lib;
}

}  // namespace

// Each function resolves its target once (a function-local static) and forwards to it.
#define FLEETLET_LAZY_NFT(fallback, name, ...)                            \
  static const auto fn = libnftables().resolve<decltype(&::name)>(#name); \
  return fn != nullptr ? fn(__VA_ARGS__) : (fallback)
#define FLEETLET_LAZY_NFT_VOID(name, ...)                                 \
  static const auto fn = libnftables().resolve<decltype(&::name)>(#name); \
  if (fn != nullptr) fn(__VA_ARGS__)

extern "C" {

struct nft_ctx* nft_ctx_new(uint32_t flags) {
  FLEETLET_LAZY_NFT(nullptr, nft_ctx_new, flags);
}
void nft_ctx_free(struct nft_ctx* ctx) { FLEETLET_LAZY_NFT_VOID(nft_ctx_free, ctx); }
void nft_ctx_output_set_flags(struct nft_ctx* ctx, unsigned int flags) {
  FLEETLET_LAZY_NFT_VOID(nft_ctx_output_set_flags, ctx, flags);
}
int nft_ctx_buffer_output(struct nft_ctx* ctx) {
  FLEETLET_LAZY_NFT(-1, nft_ctx_buffer_output, ctx);
}
int nft_ctx_buffer_error(struct nft_ctx* ctx) { FLEETLET_LAZY_NFT(-1, nft_ctx_buffer_error, ctx); }
const char* nft_ctx_get_output_buffer(struct nft_ctx* ctx) {
  FLEETLET_LAZY_NFT("", nft_ctx_get_output_buffer, ctx);
}
const char* nft_ctx_get_error_buffer(struct nft_ctx* ctx) {
  static const std::string why = libnftables().error() + "\n";  // as nft's buffer ends
  FLEETLET_LAZY_NFT(why.c_str(), nft_ctx_get_error_buffer, ctx);
}
int nft_run_cmd_from_buffer(struct nft_ctx* nft, const char* buf) {
  FLEETLET_LAZY_NFT(-1, nft_run_cmd_from_buffer, nft, buf);
}

}  // extern "C"
