#include "containerd/content.h"

#include "containerd/proto_convert.h"
#include "github.com/containerd/containerd/api/services/content/v1/content.grpc.pb.h"

namespace fleetlet::containerd {
namespace {

namespace api = ::containerd::services::content::v1;
using WriteStream = grpc::ClientReaderWriter<api::WriteContentRequest, api::WriteContentResponse>;

class GrpcContentWriter : public ContentWriter {
 public:
  GrpcContentWriter(std::unique_ptr<api::Content::Stub> stub, CallContext ctx, std::string ref,
                    int64_t total, std::string expected)
      : stub_(std::move(stub)),
        ctx_(std::move(ctx)),
        ref_(std::move(ref)),
        total_(total),
        expected_(std::move(expected)) {}

  ~GrpcContentWriter() override {
    if (stream_ && !finished_) {
      ctx_->TryCancel();
      (void)stream_->Finish();
    }
  }

  Status open() {
    stream_ = stub_->Write(ctx_.get());
    api::WriteContentRequest req;
    req.set_action(api::STAT);
    req.set_ref(ref_);
    req.set_total(total_);
    req.set_expected(expected_);
    api::WriteContentResponse resp;
    if (!stream_->Write(req) || !stream_->Read(&resp)) {
      auto status = finish();
      if (status.error_code() == grpc::StatusCode::ALREADY_EXISTS) {
        exists_ = true;
        offset_ = total_;
        return {};
      }
      return std::unexpected(fromGrpc(status, fmt::format("content.write {} stat", ref_)));
    }
    offset_ = resp.offset();
    if (offset_ > total_) {
      // A stale ingest longer than the blob: start over.
      return fail(ErrorCode::kFailedPrecondition, "ingest {} holds {} bytes, more than {}", ref_,
                  offset_, total_);
    }
    return {};
  }

  int64_t offset() const override { return offset_; }
  bool alreadyExists() const override { return exists_; }

  Status write(std::string_view data) override {
    if (exists_) return {};
    api::WriteContentRequest req;
    req.set_action(api::WRITE);
    req.set_offset(offset_);
    req.set_data(data.data(), data.size());
    api::WriteContentResponse resp;
    if (!stream_->Write(req) || !stream_->Read(&resp)) {
      auto status = finish();
      return std::unexpected(fromGrpc(status, fmt::format("content.write {}", ref_)));
    }
    offset_ = resp.offset();
    return {};
  }

  Status commit(const Labels& labels) override {
    if (exists_) return {};
    api::WriteContentRequest req;
    req.set_action(api::COMMIT);
    req.set_offset(offset_);
    req.set_total(total_);
    req.set_expected(expected_);
    toProto(labels, req.mutable_labels());
    bool sent = stream_->Write(req);
    if (sent) stream_->WritesDone();
    // containerd answers COMMIT twice; drain every answer or Finish() blocks.
    api::WriteContentResponse resp;
    while (sent && stream_->Read(&resp)) {
    }
    auto status = finish();
    if (status.ok() || status.error_code() == grpc::StatusCode::ALREADY_EXISTS) return {};
    return std::unexpected(fromGrpc(status, fmt::format("content.commit {}", ref_)));
  }

 private:
  grpc::Status finish() {
    finished_ = true;
    return stream_->Finish();
  }

  std::unique_ptr<api::Content::Stub> stub_;
  CallContext ctx_;
  std::unique_ptr<WriteStream> stream_;
  std::string ref_;
  int64_t total_;
  std::string expected_;
  int64_t offset_ = 0;
  bool exists_ = false;
  bool finished_ = false;
};

}  // namespace

Result<std::optional<ContentInfo>> ContentService::info(const std::string& digest) const {
  auto stub = api::Content::NewStub(channel());
  auto ctx = context();
  api::InfoRequest req;
  req.set_digest(digest);
  api::InfoResponse resp;
  auto status = stub->Info(ctx.get(), req, &resp);
  if (status.error_code() == grpc::StatusCode::NOT_FOUND) return std::nullopt;
  if (!status.ok()) return std::unexpected(fromGrpc(status, "content.info " + digest));
  return ContentInfo{.digest = resp.info().digest(),
                     .size = resp.info().size(),
                     .labels = fromProto(resp.info().labels())};
}

Result<std::unique_ptr<ContentWriter>> ContentService::openWriter(
    const std::string& ref, int64_t total, const std::string& expected) const {
  auto writer = std::make_unique<GrpcContentWriter>(api::Content::NewStub(channel()),
                                                    context(std::chrono::milliseconds(0)), ref,
                                                    total, expected);
  FLEETLET_RETURN_IF_ERROR(writer->open());
  return writer;
}

Status ContentService::read(const std::string& digest,
                            const std::function<Status(std::string_view)>& sink) const {
  auto stub = api::Content::NewStub(channel());
  auto ctx = context(std::chrono::milliseconds(0));
  api::ReadContentRequest req;
  req.set_digest(digest);
  auto reader = stub->Read(ctx.get(), req);
  api::ReadContentResponse resp;
  while (reader->Read(&resp)) {
    if (auto st = sink(resp.data()); !st) {
      ctx->TryCancel();
      (void)reader->Finish();
      return st;
    }
  }
  auto status = reader->Finish();
  if (!status.ok()) return std::unexpected(fromGrpc(status, "content.read " + digest));
  return {};
}

Result<std::string> ContentService::readAll(const std::string& digest, int64_t max_size) const {
  std::string out;
  FLEETLET_RETURN_IF_ERROR(read(digest, [&](std::string_view chunk) -> Status {
    if (static_cast<int64_t>(out.size() + chunk.size()) > max_size) {
      return fail(ErrorCode::kResourceExhausted, "content {} is larger than {} bytes", digest,
                  max_size);
    }
    out.append(chunk);
    return {};
  }));
  return out;
}

Status ContentService::setLabels(const std::string& digest, const Labels& labels) const {
  auto stub = api::Content::NewStub(channel());
  auto ctx = context();
  api::UpdateRequest req;
  req.mutable_info()->set_digest(digest);
  toProto(labels, req.mutable_info()->mutable_labels());
  for (const auto& [k, v] : labels) req.mutable_update_mask()->add_paths("labels." + k);
  api::UpdateResponse resp;
  auto status = stub->Update(ctx.get(), req, &resp);
  if (!status.ok()) return std::unexpected(fromGrpc(status, "content.update " + digest));
  return {};
}

Result<std::vector<ContentInfo>> ContentService::list(
    const std::vector<std::string>& filters) const {
  auto stub = api::Content::NewStub(channel());
  auto ctx = context();
  api::ListContentRequest req;
  for (const auto& f : filters) req.add_filters(f);
  auto reader = stub->List(ctx.get(), req);
  std::vector<ContentInfo> out;
  api::ListContentResponse resp;
  while (reader->Read(&resp)) {
    for (const auto& i : resp.info()) {
      out.push_back({.digest = i.digest(), .size = i.size(), .labels = fromProto(i.labels())});
    }
  }
  auto status = reader->Finish();
  if (!status.ok()) return std::unexpected(fromGrpc(status, "content.list"));
  return out;
}

Status ContentService::remove(const std::string& digest) const {
  auto stub = api::Content::NewStub(channel());
  auto ctx = context();
  api::DeleteContentRequest req;
  req.set_digest(digest);
  google::protobuf::Empty resp;
  auto status = stub->Delete(ctx.get(), req, &resp);
  if (!status.ok()) return std::unexpected(fromGrpc(status, "content.delete " + digest));
  return {};
}

Status ContentService::abortIngest(const std::string& ref) const {
  auto stub = api::Content::NewStub(channel());
  auto ctx = context();
  api::AbortRequest req;
  req.set_ref(ref);
  google::protobuf::Empty resp;
  auto status = stub->Abort(ctx.get(), req, &resp);
  if (!status.ok() && status.error_code() != grpc::StatusCode::NOT_FOUND) {
    return std::unexpected(fromGrpc(status, "content.abort " + ref));
  }
  return {};
}

Result<std::vector<IngestStatus>> ContentService::listIngests() const {
  auto stub = api::Content::NewStub(channel());
  auto ctx = context();
  api::ListStatusesRequest req;
  api::ListStatusesResponse resp;
  auto status = stub->ListStatuses(ctx.get(), req, &resp);
  if (!status.ok()) return std::unexpected(fromGrpc(status, "content.list-statuses"));
  std::vector<IngestStatus> out;
  for (const auto& s : resp.statuses()) {
    out.push_back({.ref = s.ref(), .offset = s.offset(), .total = s.total()});
  }
  return out;
}

}  // namespace fleetlet::containerd
