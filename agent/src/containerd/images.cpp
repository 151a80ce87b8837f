#include "containerd/images.h"

#include "containerd/proto_convert.h"
#include "github.com/containerd/containerd/api/services/images/v1/images.grpc.pb.h"

namespace fleetlet::containerd {
namespace {

namespace api = ::containerd::services::images::v1;

Image fromProto(const api::Image& i) {
  return Image{.name = i.name(),
               .target = containerd::fromProto(i.target()),
               .labels = containerd::fromProto(i.labels())};
}

void toProto(const Image& image, api::Image* out) {
  out->set_name(image.name);
  containerd::toProto(image.target, out->mutable_target());
  containerd::toProto(image.labels, out->mutable_labels());
}

}  // namespace

Result<std::optional<Image>> ImageService::get(const std::string& name,
                                               std::chrono::milliseconds timeout) const {
  auto stub = api::Images::NewStub(channel());
  auto ctx = context(timeout);
  api::GetImageRequest req;
  req.set_name(name);
  api::GetImageResponse resp;
  auto status = stub->Get(ctx.get(), req, &resp);
  if (status.error_code() == grpc::StatusCode::NOT_FOUND) return std::nullopt;
  if (!status.ok()) return std::unexpected(fromGrpc(status, "images.get " + name));
  return fromProto(resp.image());
}

Result<std::vector<Image>> ImageService::list(const std::vector<std::string>& filters) const {
  auto stub = api::Images::NewStub(channel());
  auto ctx = context();
  api::ListImagesRequest req;
  for (const auto& f : filters) req.add_filters(f);
  api::ListImagesResponse resp;
  auto status = stub->List(ctx.get(), req, &resp);
  if (!status.ok()) return std::unexpected(fromGrpc(status, "images.list"));
  std::vector<Image> out;
  for (const auto& i : resp.images()) out.push_back(fromProto(i));
  return out;
}

Status ImageService::put(const Image& image) const {
  auto stub = api::Images::NewStub(channel());
  {
    auto ctx = context();
    api::CreateImageRequest req;
    toProto(image, req.mutable_image());
    api::CreateImageResponse resp;
    auto status = stub->Create(ctx.get(), req, &resp);
    if (status.ok()) return {};
    if (status.error_code() != grpc::StatusCode::ALREADY_EXISTS) {
      return std::unexpected(fromGrpc(status, "images.create " + image.name));
    }
  }
  auto ctx = context();
  api::UpdateImageRequest req;
  toProto(image, req.mutable_image());
  req.mutable_update_mask()->add_paths("target");
  req.mutable_update_mask()->add_paths("labels");
  api::UpdateImageResponse resp;
  auto status = stub->Update(ctx.get(), req, &resp);
  if (!status.ok()) return std::unexpected(fromGrpc(status, "images.update " + image.name));
  return {};
}

Status ImageService::remove(const std::string& name, bool sync) const {
  auto stub = api::Images::NewStub(channel());
  auto ctx = context();
  api::DeleteImageRequest req;
  req.set_name(name);
  req.set_sync(sync);
  google::protobuf::Empty resp;
  auto status = stub->Delete(ctx.get(), req, &resp);
  if (!status.ok()) return std::unexpected(fromGrpc(status, "images.delete " + name));
  return {};
}

}  // namespace fleetlet::containerd
