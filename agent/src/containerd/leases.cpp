#include "containerd/leases.h"

#include <spdlog/spdlog.h>

#include <ctime>

#include "github.com/containerd/containerd/api/services/leases/v1/leases.grpc.pb.h"
#include "github.com/containerd/containerd/api/services/namespaces/v1/namespace.grpc.pb.h"

namespace fleetlet::containerd {
namespace {

namespace api = ::containerd::services::leases::v1;

std::string rfc3339(std::chrono::system_clock::time_point t) {
  std::time_t tt = std::chrono::system_clock::to_time_t(t);
  std::tm tm{};
  (void)gmtime_r(&tt, &tm);
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z", tm.tm_year + 1900, tm.tm_mon + 1,
                     tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

}  // namespace

Status ensureNamespace(const std::shared_ptr<Connection>& connection, const std::string& ns) {
  namespace nsapi = ::containerd::services::namespaces::v1;
  auto stub = nsapi::Namespaces::NewStub(connection->channel());
  grpc::ClientContext ctx;
  // containerd publishes a /namespaces/create event in the new namespace, so it wants the
  // namespace in the metadata too.
  ctx.AddMetadata("containerd-namespace", ns);
  ctx.set_wait_for_ready(true);
  ctx.set_deadline(std::chrono::system_clock::now() + kDefaultCallTimeout);
  nsapi::CreateNamespaceRequest req;
  req.mutable_namespace_()->set_name(ns);
  nsapi::CreateNamespaceResponse resp;
  auto status = stub->Create(&ctx, req, &resp);
  if (!status.ok() && status.error_code() != grpc::StatusCode::ALREADY_EXISTS) {
    return std::unexpected(fromGrpc(status, "namespaces.create " + ns));
  }
  return {};
}

Result<std::string> LeaseService::create(const std::string& id, std::chrono::seconds expire) const {
  auto stub = api::Leases::NewStub(channel());
  auto ctx = context();
  api::CreateRequest req;
  req.set_id(id);
  (*req.mutable_labels())["containerd.io/gc.expire"] =
      rfc3339(std::chrono::system_clock::now() + expire);
  api::CreateResponse resp;
  auto status = stub->Create(ctx.get(), req, &resp);
  if (!status.ok()) return std::unexpected(fromGrpc(status, "leases.create " + id));
  return resp.lease().id();
}

Status LeaseService::remove(const std::string& id) const {
  auto stub = api::Leases::NewStub(channel());
  auto ctx = context();
  api::DeleteRequest req;
  req.set_id(id);
  google::protobuf::Empty resp;
  auto status = stub->Delete(ctx.get(), req, &resp);
  if (!status.ok() && status.error_code() != grpc::StatusCode::NOT_FOUND) {
    return std::unexpected(fromGrpc(status, "leases.delete " + id));
  }
  return {};
}

Result<std::vector<std::string>> LeaseService::list() const {
  auto stub = api::Leases::NewStub(channel());
  auto ctx = context();
  api::ListRequest req;
  api::ListResponse resp;
  auto status = stub->List(ctx.get(), req, &resp);
  if (!status.ok()) return std::unexpected(fromGrpc(status, "leases.list"));
  std::vector<std::string> out;
  for (const auto& l : resp.leases()) out.push_back(l.id());
  return out;
}

Result<ScopedLease> ScopedLease::create(const LeaseService& leases, const std::string& id,
                                        std::chrono::seconds expire) {
  FLEETLET_ASSIGN_OR_RETURN(std::string created, leases.create(id, expire));
  return ScopedLease(leases, std::move(created));
}

ScopedLease::ScopedLease(ScopedLease&& other) noexcept
    : leases_(std::move(other.leases_)), id_(std::exchange(other.id_, {})) {}

ScopedLease::~ScopedLease() {
  if (id_.empty()) return;
  if (auto st = leases_.remove(id_); !st) {
    spdlog::warn("lease {} not deleted (containerd expires it later): {}", id_,
                 st.error().message());
  }
}

}  // namespace fleetlet::containerd
