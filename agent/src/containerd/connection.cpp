#include "containerd/connection.h"

#include <sys/stat.h>

#include <thread>

#include "github.com/containerd/containerd/api/services/version/v1/version.grpc.pb.h"

namespace fleetlet::containerd {

Error fromGrpc(const grpc::Status& status, std::string_view what) {
  ErrorCode code = ErrorCode::kInternal;
  switch (status.error_code()) {
    case grpc::StatusCode::NOT_FOUND:
      code = ErrorCode::kNotFound;
      break;
    case grpc::StatusCode::INVALID_ARGUMENT:
    case grpc::StatusCode::OUT_OF_RANGE:
      code = ErrorCode::kInvalidArgument;
      break;
    case grpc::StatusCode::ALREADY_EXISTS:
      code = ErrorCode::kAlreadyExists;
      break;
    case grpc::StatusCode::UNAVAILABLE:
    case grpc::StatusCode::DEADLINE_EXCEEDED:
    case grpc::StatusCode::CANCELLED:
    case grpc::StatusCode::ABORTED:
      code = ErrorCode::kUnavailable;
      break;
    case grpc::StatusCode::FAILED_PRECONDITION:
      code = ErrorCode::kFailedPrecondition;
      break;
    case grpc::StatusCode::RESOURCE_EXHAUSTED:
      code = ErrorCode::kResourceExhausted;
      break;
    default:
      break;
  }
  return Error(code, fmt::format("{}: {}", what, status.error_message()));
}

Result<std::shared_ptr<Connection>> Connection::connect(const std::string& socket_path,
                                                        std::chrono::milliseconds timeout) {
  struct stat st {};
  if (::stat(socket_path.c_str(), &st) != 0) {
    return fail(ErrorCode::kUnavailable,
                "containerd at {} does not answer: no such socket (is containerd running? "
                "set --address)",
                socket_path);
  }
  grpc::ChannelArguments args;
  // containerd expects the authority "localhost" on its unix socket, as the Go client sends.
  args.SetString(GRPC_ARG_DEFAULT_AUTHORITY, "localhost");
  args.SetMaxReceiveMessageSize(16 << 20);
  args.SetMaxSendMessageSize(16 << 20);
  // Reconnect quickly after containerd restarts.
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1000);
  auto channel =
      grpc::CreateCustomChannel("unix://" + socket_path, grpc::InsecureChannelCredentials(), args);
  std::shared_ptr<Connection> conn(new Connection(socket_path, channel));
  auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    auto v = conn->version();
    if (v) return conn;
    if (std::chrono::steady_clock::now() >= deadline) {
      return fail(ErrorCode::kUnavailable, "containerd at {} does not answer: {}", socket_path,
                  v.error().message());
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

Result<std::string> Connection::version() const {
  auto stub = ::containerd::services::version::v1::Version::NewStub(channel_);
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(2));
  google::protobuf::Empty req;
  ::containerd::services::version::v1::VersionResponse resp;
  auto status = stub->Version(&ctx, req, &resp);
  if (!status.ok()) return std::unexpected(fromGrpc(status, "version"));
  return resp.version();
}

void CallRegistry::add(grpc::ClientContext* ctx) {
  std::lock_guard lock(mu_);
  if (shutdown_) ctx->TryCancel();
  active_.insert(ctx);
}

void CallRegistry::remove(grpc::ClientContext* ctx) {
  std::lock_guard lock(mu_);
  active_.erase(ctx);
}

void CallRegistry::shutdown() {
  std::lock_guard lock(mu_);
  shutdown_ = true;
  for (auto* ctx : active_) ctx->TryCancel();
}

bool CallRegistry::isShutdown() const {
  std::lock_guard lock(mu_);
  return shutdown_;
}

void CallContextDeleter::operator()(grpc::ClientContext* ctx) const {
  if (registry) registry->remove(ctx);
  delete ctx;  // NOLINT(cppcoreguidelines-owning-memory): the unique_ptr's deleter
}

CallContext Connection::newCall() const {
  CallContext ctx(new grpc::ClientContext(), CallContextDeleter{calls_});
  calls_->add(ctx.get());
  return ctx;
}

CallContext ServiceBase::context(std::chrono::milliseconds timeout) const {
  auto ctx = connection_->newCall();
  ctx->AddMetadata("containerd-namespace", scope_.ns);
  if (!scope_.lease.empty()) ctx->AddMetadata("containerd-lease", scope_.lease);
  ctx->set_wait_for_ready(true);
  if (timeout.count() > 0) ctx->set_deadline(std::chrono::system_clock::now() + timeout);
  return ctx;
}

}  // namespace fleetlet::containerd
