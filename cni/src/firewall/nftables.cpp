#include "firewall/nftables.h"

#include <nftables/libnftables.h>

#include <string>

#include "spec/types.h"

namespace fleetlet::cni::firewall {

LibNftables::LibNftables() : ctx_(nft_ctx_new(NFT_CTX_DEFAULT)) {
  nft_ctx_output_set_flags(ctx_, NFT_CTX_OUTPUT_JSON | NFT_CTX_OUTPUT_HANDLE);
  nft_ctx_buffer_output(ctx_);
  nft_ctx_buffer_error(ctx_);
}

LibNftables::~LibNftables() { nft_ctx_free(ctx_); }

Result<Json> LibNftables::run(const Json& batch) {
  std::string text = dumpJson(batch);
  int rc = nft_run_cmd_from_buffer(ctx_, text.c_str());
  std::string out = nft_ctx_get_output_buffer(ctx_);
  std::string err = nft_ctx_get_error_buffer(ctx_);
  if (rc != 0) {
    while (!err.empty() && (err.back() == '\n' || err.back() == ' ')) err.pop_back();
    auto code = err.find("No such file or directory") != std::string::npos ? ErrorCode::kNotFound
                                                                           : ErrorCode::kInternal;
    return fail(code, "nftables: {}", err.empty() ? "command failed" : err);
  }
  if (out.find_first_not_of(" \n") == std::string::npos) return Json::object();
  return parseJson(out, "nftables output");
}

}  // namespace fleetlet::cni::firewall
