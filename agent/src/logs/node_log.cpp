#include "logs/node_log.h"

#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/base_sink.h>

#include <mutex>

#include "logs/cri.h"

namespace fleetlet::logs {
namespace {

constexpr size_t kMaxLine = size_t{16} * 1024;

class NodeLogSink final : public spdlog::sinks::base_sink<std::mutex> {
 public:
  explicit NodeLogSink(RotatingWriter writer) : writer_(std::move(writer)) {
    set_formatter_(std::make_unique<spdlog::pattern_formatter>("%l [%n] %v",
                                                               spdlog::pattern_time_type::utc, ""));
  }

 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    spdlog::memory_buf_t formatted;
    formatter_->format(msg, formatted);
    std::string_view text(formatted.data(), formatted.size());
    std::string records;
    while (!text.empty()) {
      const size_t nl = text.find('\n');
      std::string_view line = text.substr(0, nl);
      if (!line.empty())
        appendCriRecord(records, msg.time, Stream::kStderr, false, line.substr(0, kMaxLine));
      if (nl == std::string_view::npos) break;
      text.remove_prefix(nl + 1);
    }
    // Errors (a full disk) drop the message here; stderr still has it.
    if (!records.empty() && writer_.append(records)) (void)writer_.flush();
  }
  void flush_() override { (void)writer_.flush(); }

 private:
  RotatingWriter writer_;
};

}  // namespace

Result<std::shared_ptr<spdlog::sinks::sink>> openNodeLogSink(const std::filesystem::path& dir,
                                                             RotationPolicy policy) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return fail(ErrorCode::kInternal, "create {}: {}", dir.string(), ec.message());
  using std::filesystem::perms;
  std::filesystem::permissions(dir, perms::owner_all | perms::group_read | perms::group_exec,
                               std::filesystem::perm_options::replace, ec);
  FLEETLET_ASSIGN_OR_RETURN(auto writer, RotatingWriter::open(dir, policy));
  return std::shared_ptr<spdlog::sinks::sink>(std::make_shared<NodeLogSink>(std::move(writer)));
}

}  // namespace fleetlet::logs
