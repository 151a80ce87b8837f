#include "containerd/snapshots.h"

#include "containerd/proto_convert.h"
#include "github.com/containerd/containerd/api/services/diff/v1/diff.grpc.pb.h"
#include "github.com/containerd/containerd/api/services/snapshots/v1/snapshots.grpc.pb.h"

namespace fleetlet::containerd {
namespace {

namespace api = ::containerd::services::snapshots::v1;

SnapshotInfo fromProto(const api::Info& info) {
  SnapshotInfo out{.name = info.name(), .parent = info.parent(), .labels = {}};
  out.labels = containerd::fromProto(info.labels());
  switch (info.kind()) {
    case api::VIEW:
      out.kind = SnapshotInfo::Kind::kView;
      break;
    case api::ACTIVE:
      out.kind = SnapshotInfo::Kind::kActive;
      break;
    case api::COMMITTED:
      out.kind = SnapshotInfo::Kind::kCommitted;
      break;
    default:
      break;
  }
  return out;
}

}  // namespace

Result<std::optional<SnapshotInfo>> SnapshotService::stat(const std::string& key) const {
  auto stub = api::Snapshots::NewStub(channel());
  auto ctx = context();
  api::StatSnapshotRequest req;
  req.set_snapshotter(snapshotter_);
  req.set_key(key);
  api::StatSnapshotResponse resp;
  auto status = stub->Stat(ctx.get(), req, &resp);
  if (status.error_code() == grpc::StatusCode::NOT_FOUND) return std::nullopt;
  if (!status.ok()) return std::unexpected(fromGrpc(status, "snapshots.stat " + key));
  return fromProto(resp.info());
}

Result<std::vector<Mount>> SnapshotService::prepare(const std::string& key,
                                                    const std::string& parent,
                                                    const Labels& labels) const {
  auto stub = api::Snapshots::NewStub(channel());
  auto ctx = context();
  api::PrepareSnapshotRequest req;
  req.set_snapshotter(snapshotter_);
  req.set_key(key);
  req.set_parent(parent);
  toProto(labels, req.mutable_labels());
  api::PrepareSnapshotResponse resp;
  auto status = stub->Prepare(ctx.get(), req, &resp);
  if (!status.ok()) return std::unexpected(fromGrpc(status, "snapshots.prepare " + key));
  return containerd::fromProto(resp.mounts());
}

Status SnapshotService::commit(const std::string& name, const std::string& key,
                               const Labels& labels) const {
  auto stub = api::Snapshots::NewStub(channel());
  auto ctx = context();
  api::CommitSnapshotRequest req;
  req.set_snapshotter(snapshotter_);
  req.set_name(name);
  req.set_key(key);
  toProto(labels, req.mutable_labels());
  google::protobuf::Empty resp;
  auto status = stub->Commit(ctx.get(), req, &resp);
  if (!status.ok()) return std::unexpected(fromGrpc(status, "snapshots.commit " + name));
  return {};
}

Result<std::vector<Mount>> SnapshotService::mounts(const std::string& key) const {
  auto stub = api::Snapshots::NewStub(channel());
  auto ctx = context();
  api::MountsRequest req;
  req.set_snapshotter(snapshotter_);
  req.set_key(key);
  api::MountsResponse resp;
  auto status = stub->Mounts(ctx.get(), req, &resp);
  if (!status.ok()) return std::unexpected(fromGrpc(status, "snapshots.mounts " + key));
  return containerd::fromProto(resp.mounts());
}

Status SnapshotService::remove(const std::string& key) const {
  auto stub = api::Snapshots::NewStub(channel());
  auto ctx = context();
  api::RemoveSnapshotRequest req;
  req.set_snapshotter(snapshotter_);
  req.set_key(key);
  google::protobuf::Empty resp;
  auto status = stub->Remove(ctx.get(), req, &resp);
  if (!status.ok()) return std::unexpected(fromGrpc(status, "snapshots.remove " + key));
  return {};
}

Result<std::vector<SnapshotInfo>> SnapshotService::list() const {
  auto stub = api::Snapshots::NewStub(channel());
  auto ctx = context();
  api::ListSnapshotsRequest req;
  req.set_snapshotter(snapshotter_);
  auto reader = stub->List(ctx.get(), req);
  std::vector<SnapshotInfo> out;
  api::ListSnapshotsResponse resp;
  while (reader->Read(&resp)) {
    for (const auto& i : resp.info()) out.push_back(fromProto(i));
  }
  auto status = reader->Finish();
  if (!status.ok()) return std::unexpected(fromGrpc(status, "snapshots.list"));
  return out;
}

Result<std::string> DiffService::apply(const Descriptor& layer,
                                       const std::vector<Mount>& mounts) const {
  namespace diff = ::containerd::services::diff::v1;
  auto stub = diff::Diff::NewStub(channel());
  auto ctx = context(std::chrono::milliseconds(0));
  diff::ApplyRequest req;
  toProto(layer, req.mutable_diff());
  for (const auto& m : mounts) toProto(m, req.add_mounts());
  diff::ApplyResponse resp;
  auto status = stub->Apply(ctx.get(), req, &resp);
  if (!status.ok()) return std::unexpected(fromGrpc(status, "diff.apply " + layer.digest));
  return resp.applied().digest();
}

}  // namespace fleetlet::containerd
