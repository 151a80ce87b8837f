#include "containerd/containers.h"

#include "containerd/proto_convert.h"
#include "github.com/containerd/containerd/api/services/containers/v1/containers.grpc.pb.h"

namespace fleetlet::containerd {
namespace {

namespace api = ::containerd::services::containers::v1;

Container fromProto(const api::Container& c) {
  return Container{.id = c.id(),
                   .image = c.image(),
                   .labels = containerd::fromProto(c.labels()),
                   .runtime = c.runtime().name(),
                   .spec_json = c.spec().value(),
                   .snapshotter = c.snapshotter(),
                   .snapshot_key = c.snapshot_key()};
}

}  // namespace

Status ContainerService::create(const Container& container) const {
  auto stub = api::Containers::NewStub(channel());
  auto ctx = context();
  api::CreateContainerRequest req;
  auto* c = req.mutable_container();
  c->set_id(container.id);
  c->set_image(container.image);
  toProto(container.labels, c->mutable_labels());
  c->mutable_runtime()->set_name(container.runtime);
  c->mutable_spec()->set_type_url(kOciSpecTypeUrl);
  c->mutable_spec()->set_value(container.spec_json);
  c->set_snapshotter(container.snapshotter);
  c->set_snapshot_key(container.snapshot_key);
  api::CreateContainerResponse resp;
  auto status = stub->Create(ctx.get(), req, &resp);
  if (!status.ok()) return std::unexpected(fromGrpc(status, "containers.create " + container.id));
  return {};
}

Result<std::optional<Container>> ContainerService::get(const std::string& id) const {
  auto stub = api::Containers::NewStub(channel());
  auto ctx = context();
  api::GetContainerRequest req;
  req.set_id(id);
  api::GetContainerResponse resp;
  auto status = stub->Get(ctx.get(), req, &resp);
  if (status.error_code() == grpc::StatusCode::NOT_FOUND) return std::nullopt;
  if (!status.ok()) return std::unexpected(fromGrpc(status, "containers.get " + id));
  return fromProto(resp.container());
}

Result<std::vector<Container>> ContainerService::list(
    const std::vector<std::string>& filters) const {
  auto stub = api::Containers::NewStub(channel());
  auto ctx = context();
  api::ListContainersRequest req;
  for (const auto& f : filters) req.add_filters(f);
  api::ListContainersResponse resp;
  auto status = stub->List(ctx.get(), req, &resp);
  if (!status.ok()) return std::unexpected(fromGrpc(status, "containers.list"));
  std::vector<Container> out;
  for (const auto& c : resp.containers()) out.push_back(fromProto(c));
  return out;
}

Status ContainerService::remove(const std::string& id) const {
  auto stub = api::Containers::NewStub(channel());
  auto ctx = context();
  api::DeleteContainerRequest req;
  req.set_id(id);
  google::protobuf::Empty resp;
  auto status = stub->Delete(ctx.get(), req, &resp);
  if (!status.ok()) return std::unexpected(fromGrpc(status, "containers.delete " + id));
  return {};
}

}  // namespace fleetlet::containerd
