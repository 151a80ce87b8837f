#include "cli/image_commands.h"

#include <unistd.h>

#include <chrono>
#include <cstdio>

#include "cli/command_line.h"
#include "cli/progress_display.h"
#include "containerd/connection.h"
#include "image/importer.h"
#include "image/puller.h"
#include "image/registry_source.h"
#include "image/store.h"
#include "oci/platform.h"
#include "oci/reference.h"
#include "registry/registry_client.h"

namespace fleetlet::cli {
namespace {

Result<image::ImageStore> openStore(const ContainerdFlags& flags) {
  FLEETLET_ASSIGN_OR_RETURN(
      auto conn, containerd::Connection::connect(flags.address, std::chrono::seconds(5)));
  return image::ImageStore(std::move(conn), flags.ns);
}

Result<oci::Platform> parsePlatform(const std::string& text) {
  if (text.empty()) return oci::hostPlatform();
  oci::Platform p;
  auto first = text.find('/');
  if (first == std::string::npos) {
    return fail(ErrorCode::kInvalidArgument, "platform \"{}\" is not os/arch[/variant]", text);
  }
  p.os = text.substr(0, first);
  auto second = text.find('/', first + 1);
  p.architecture =
      text.substr(first + 1, second == std::string::npos ? std::string::npos : second - first - 1);
  if (second != std::string::npos) p.variant = text.substr(second + 1);
  return oci::normalize(p);
}

struct PullFlags {
  std::string ref;
  bool plain_http = false;
  bool https = false;
  std::string user;
  std::string platform;
  size_t parallel = 3;
};

int runPull(const ContainerdFlags& flags, const PullFlags& pf) {
  auto started = std::chrono::steady_clock::now();
  auto ref = oci::Reference::parse(pf.ref);
  if (!ref) return reportFailure(ref.error());
  auto platform = parsePlatform(pf.platform);
  if (!platform) return reportFailure(platform.error());
  registry::RegistryOptions options{
      .plain_http = pf.plain_http || (!pf.https && registry::isLoopbackRegistry(ref->registry()))};
  if (!pf.user.empty()) {
    auto colon = pf.user.find(':');
    if (colon == std::string::npos) {
      return reportFailure(Error(ErrorCode::kInvalidArgument, "--user takes USER:PASSWORD"));
    }
    options.credentials =
        registry::Credentials{pf.user.substr(0, colon), pf.user.substr(colon + 1)};
  }
  auto store = openStore(flags);
  if (!store) return reportFailure(store.error());

  registry::RegistryClient client(ref->registry(), options);
  image::RegistrySource source(client, *ref);
  ProgressDisplay display(stdout, ::isatty(STDOUT_FILENO) != 0);
  image::PullOptions pull{.platform = *platform,
                          .max_parallel = pf.parallel,
                          .unpack = true,
                          .progress = [&](const image::PullProgress& p) { display.update(p); }};
  auto result = image::pullImage(source, *store, ref->toString(), pull);
  display.finish();
  if (!result) return reportFailure(result.error().wrap("pull {}", ref->toString()));
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  fmt::print("pulled {} ({}, {} layers, {}; fetched {}, resumed {}) in {:.2f} s\n", result->name,
             result->target.digest, result->layers, humanBytes(result->total_bytes),
             humanBytes(result->fetched_bytes), humanBytes(result->resumed_bytes), secs);
  return kExitOk;
}

int runImport(const ContainerdFlags& flags, const std::string& file, const std::string& name) {
  auto store = openStore(flags);
  if (!store) return reportFailure(store.error());
  ProgressDisplay display(stdout, false);
  image::ImportOptions options;
  if (!name.empty()) options.name = name;
  options.pull.progress = [&](const image::PullProgress& p) {
    if (p.phase == image::PullProgress::Phase::kDownloaded) display.update(p);
  };
  auto results = image::importArchive(file, *store, options);
  if (!results) return reportFailure(results.error().wrap("import {}", file));
  for (const auto& r : *results) {
    fmt::print("imported {} ({}, {} layers, {})\n", r.name, r.target.digest, r.layers,
               humanBytes(r.total_bytes));
  }
  return kExitOk;
}

int runList(const ContainerdFlags& flags, bool quiet) {
  auto store = openStore(flags);
  if (!store) return reportFailure(store.error());
  auto images = store->list();
  if (!images) return reportFailure(images.error());
  if (quiet) {
    for (const auto& i : *images) fmt::print("{}\n", i.name);
    return kExitOk;
  }
  size_t width = 4;
  for (const auto& i : *images) width = std::max(width, i.name.size());
  fmt::print("{:<{}}  {:<19}  {:>10}  {:<12}  {}\n", "NAME", width, "DIGEST", "SIZE", "PLATFORM",
             "UNPACKED");
  for (const auto& i : *images) {
    fmt::print("{:<{}}  {:<19}  {:>10}  {:<12}  {}\n", i.name, width, i.target.digest.substr(0, 19),
               humanBytes(i.size), i.platform.empty() ? "?" : i.platform,
               i.unpacked ? "yes" : "no");
  }
  return kExitOk;
}

int runRemove(const ContainerdFlags& flags, const std::vector<std::string>& names) {
  auto store = openStore(flags);
  if (!store) return reportFailure(store.error());
  int rc = kExitOk;
  for (const auto& n : names) {
    // Accept short names as they were pulled ("busybox" -> docker.io/library/busybox:latest).
    std::string name = n;
    if (auto ref = oci::Reference::parse(n)) name = ref->toString();
    if (auto st = store->removeImage(name); !st) {
      rc = reportFailure(st.error());
      continue;
    }
    fmt::print("removed {}\n", name);
  }
  return rc;
}

}  // namespace

void addImageCommands(CLI::App& app, const std::shared_ptr<ContainerdFlags>& flags,
                      Action& action) {
  auto* image = app.add_subcommand("image", "Pull, import, list and remove images in containerd");
  image->require_subcommand(1);

  auto pf = std::make_shared<PullFlags>();
  auto* pull = image->add_subcommand(
      "pull", "Pull an image from an OCI registry and unpack it (resumes interrupted pulls)");
  pull->add_option("ref", pf->ref, "Image reference, e.g. 127.0.0.1:5000/acme/camera:1.4")
      ->required();
  pull->add_flag("--plain-http", pf->plain_http,
                 "Talk plain HTTP to the registry (lab registries; loopback ones are unless "
                 "--https: localhost, 127.0.0.0/8, [::1])");
  pull->add_flag("--https", pf->https, "Talk HTTPS to a loopback registry")
      ->excludes("--plain-http");
  pull->add_option("--user", pf->user, "Registry credentials USER:PASSWORD");
  pull->add_option("--platform", pf->platform, "os/arch[/variant] to pull (default: this host)");
  pull->add_option("--parallel", pf->parallel, "Layers downloaded at once")
      ->default_val(3)
      ->check(CLI::Range(1, 16));
  pull->callback([flags, pf, &action] { action = [=] { return runPull(*flags, *pf); }; });

  auto file = std::make_shared<std::string>();
  auto name = std::make_shared<std::string>();
  auto* import_cmd = image->add_subcommand(
      "import", "Import an OCI image-layout tar (for devices without a registry)");
  import_cmd->add_option("file", *file, "The archive (tar, or compressed tar)")->required();
  import_cmd->add_option("--name", *name,
                         "Image name to record when the archive's index names none");
  import_cmd->callback(
      [flags, file, name, &action] { action = [=] { return runImport(*flags, *file, *name); }; });

  auto quiet = std::make_shared<bool>(false);
  auto* ls = image->add_subcommand("ls", "List images");
  ls->add_flag("-q,--quiet", *quiet, "Print only names");
  ls->callback([flags, quiet, &action] { action = [=] { return runList(*flags, *quiet); }; });

  auto names = std::make_shared<std::vector<std::string>>();
  auto* rm =
      image->add_subcommand("rm", "Remove images (their blobs and snapshots go once unused)");
  rm->add_option("name", *names, "Image names")->required();
  rm->callback([flags, names, &action] { action = [=] { return runRemove(*flags, *names); }; });
}

}  // namespace fleetlet::cli
