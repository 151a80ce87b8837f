#include "oci/manifest.h"

#include <fmt/ranges.h>

#include <algorithm>

#include "oci/digest.h"
#include "oci/media_types.h"

namespace fleetlet::oci {
namespace {

namespace mt = media_type;

std::string at(std::string_view path, std::string_view key) {
  return fmt::format("{}.{}", path, key);
}

std::string at(std::string_view path, size_t index) { return fmt::format("{}[{}]", path, index); }

Status requireObjectRoot(const Json& json, std::string_view path) {
  if (!json.is_object()) {
    return fail(ErrorCode::kInvalidArgument, "{}: expected an object, got {}", path,
                jsonTypeName(json));
  }
  return {};
}

// An optional member: nullptr when absent or null.
const Json* optionalMember(const Json& object, std::string_view key) {
  auto it = object.find(key);
  if (it == object.end() || it->is_null()) return nullptr;
  return &*it;
}

Result<std::vector<std::string>> optionalStringArray(const Json& object, std::string_view key,
                                                     std::string_view path) {
  std::vector<std::string> out;
  const Json* value = optionalMember(object, key);
  if (value == nullptr) return out;
  std::string here = at(path, key);
  if (!value->is_array()) {
    return fail(ErrorCode::kInvalidArgument, "{}: expected an array, got {}", here,
                jsonTypeName(*value));
  }
  for (size_t i = 0; i < value->size(); ++i) {
    const Json& item = (*value)[i];
    if (!item.is_string()) {
      return fail(ErrorCode::kInvalidArgument, "{}: expected a string, got {}", at(here, i),
                  jsonTypeName(item));
    }
    out.push_back(item.get<std::string>());
  }
  return out;
}

Result<std::map<std::string, std::string>> optionalStringMap(const Json& object,
                                                             std::string_view key,
                                                             std::string_view path) {
  std::map<std::string, std::string> out;
  const Json* value = optionalMember(object, key);
  if (value == nullptr) return out;
  std::string here = at(path, key);
  if (!value->is_object()) {
    return fail(ErrorCode::kInvalidArgument, "{}: expected an object, got {}", here,
                jsonTypeName(*value));
  }
  for (const auto& [k, v] : value->items()) {
    if (!v.is_string()) {
      return fail(ErrorCode::kInvalidArgument, "{}: expected a string, got {}", at(here, k),
                  jsonTypeName(v));
    }
    out.emplace(k, v.get<std::string>());
  }
  return out;
}

Result<std::string> optionalStringOrEmpty(const Json& object, std::string_view key,
                                          std::string_view path) {
  FLEETLET_ASSIGN_OR_RETURN(auto value, optionalString(object, key, path));
  return value.value_or("");
}

Status validateDigestAt(std::string_view digest, const std::string& path) {
  if (auto ok = validateDigest(digest); !ok) return std::unexpected(ok.error().wrap("{}", path));
  return {};
}

Result<Platform> parsePlatform(const Json& json, std::string_view path) {
  FLEETLET_RETURN_IF_ERROR(requireObjectRoot(json, path));
  Platform p;
  FLEETLET_ASSIGN_OR_RETURN(p.os, requireString(json, "os", path));
  FLEETLET_ASSIGN_OR_RETURN(p.architecture, requireString(json, "architecture", path));
  if (p.os.empty())
    return fail(ErrorCode::kInvalidArgument, "{}: must not be empty", at(path, "os"));
  if (p.architecture.empty()) {
    return fail(ErrorCode::kInvalidArgument, "{}: must not be empty", at(path, "architecture"));
  }
  FLEETLET_ASSIGN_OR_RETURN(p.variant, optionalStringOrEmpty(json, "variant", path));
  FLEETLET_ASSIGN_OR_RETURN(p.os_version, optionalStringOrEmpty(json, "os.version", path));
  FLEETLET_ASSIGN_OR_RETURN(p.os_features, optionalStringArray(json, "os.features", path));
  return p;
}

// The document's root object with schemaVersion 2 checked; schema1 is refused here.
Result<Json> parseDocument(std::string_view bytes, std::string_view path) {
  FLEETLET_ASSIGN_OR_RETURN(Json doc, parseJson(bytes, path));
  FLEETLET_RETURN_IF_ERROR(requireObjectRoot(doc, path));
  FLEETLET_ASSIGN_OR_RETURN(int64_t version, requireInt(doc, "schemaVersion", path));
  if (version == 1) {
    return fail(ErrorCode::kInvalidArgument,
                "{}: unsupported Docker schema1 manifest (schemaVersion 1); push the image "
                "again with a current client",
                path);
  }
  if (version != 2) {
    return fail(ErrorCode::kInvalidArgument, "{}: expected 2, got {}", at(path, "schemaVersion"),
                version);
  }
  return doc;
}

std::unexpected<Error> schema1Error(std::string_view path) {
  return fail(ErrorCode::kInvalidArgument,
              "{}: unsupported Docker schema1 manifest; push the image again with a current "
              "client",
              path);
}

// Reconciles the document's mediaType with the hint. `accept` says which types this parser
// takes; `kind` names them in errors; `fallback` is used when neither names a type.
Result<std::string> reconcileMediaType(const Json& doc, std::string_view hint,
                                       std::string_view path, bool (*accept)(std::string_view),
                                       std::string_view kind, std::string_view fallback) {
  FLEETLET_ASSIGN_OR_RETURN(auto declared, optionalString(doc, "mediaType", path));
  if (mt::isSchema1(hint) || (declared && mt::isSchema1(*declared))) return schema1Error(path);
  if (declared && !accept(*declared)) {
    return fail(ErrorCode::kInvalidArgument, "{}: \"{}\" is not {}", at(path, "mediaType"),
                *declared, kind);
  }
  bool hint_known = mt::isIndex(hint) || mt::isManifest(hint);
  if (hint_known && !accept(hint)) {
    return fail(ErrorCode::kInvalidArgument, "{}: expected {}, but it was fetched as \"{}\"", path,
                kind, hint);
  }
  if (declared && hint_known && *declared != hint) {
    return fail(ErrorCode::kInvalidArgument, "{}: \"{}\" contradicts the descriptor's \"{}\"",
                at(path, "mediaType"), *declared, hint);
  }
  if (declared) return *declared;
  if (hint_known) return std::string(hint);
  return std::string(fallback);
}

}  // namespace

Result<Descriptor> parseDescriptor(const Json& json, std::string_view path) {
  FLEETLET_RETURN_IF_ERROR(requireObjectRoot(json, path));
  Descriptor d;
  FLEETLET_ASSIGN_OR_RETURN(d.media_type, requireString(json, "mediaType", path));
  if (d.media_type.empty()) {
    return fail(ErrorCode::kInvalidArgument, "{}: must not be empty", at(path, "mediaType"));
  }
  FLEETLET_ASSIGN_OR_RETURN(d.digest, requireString(json, "digest", path));
  FLEETLET_RETURN_IF_ERROR(validateDigestAt(d.digest, at(path, "digest")));
  FLEETLET_ASSIGN_OR_RETURN(d.size, requireInt(json, "size", path));
  if (d.size < 0) {
    return fail(ErrorCode::kInvalidArgument, "{}: must not be negative, got {}", at(path, "size"),
                d.size);
  }
  if (const Json* platform = optionalMember(json, "platform")) {
    FLEETLET_ASSIGN_OR_RETURN(d.platform, parsePlatform(*platform, at(path, "platform")));
  }
  FLEETLET_ASSIGN_OR_RETURN(d.annotations, optionalStringMap(json, "annotations", path));
  FLEETLET_ASSIGN_OR_RETURN(d.urls, optionalStringArray(json, "urls", path));
  return d;
}

Result<std::string> detectManifestType(std::string_view bytes, std::string_view content_type) {
  constexpr std::string_view kPath = "manifest";
  if (mt::isSchema1(content_type)) return schema1Error(kPath);
  FLEETLET_ASSIGN_OR_RETURN(Json doc, parseDocument(bytes, kPath));
  FLEETLET_ASSIGN_OR_RETURN(auto declared, optionalString(doc, "mediaType", kPath));
  bool hint_known = mt::isIndex(content_type) || mt::isManifest(content_type);
  if (declared) {
    if (mt::isSchema1(*declared)) return schema1Error(kPath);
    if (!mt::isIndex(*declared) && !mt::isManifest(*declared)) {
      return fail(ErrorCode::kInvalidArgument,
                  "{}: unsupported media type \"{}\" (expected an image index or manifest)",
                  at(kPath, "mediaType"), *declared);
    }
    if (hint_known && *declared != content_type) {
      return fail(ErrorCode::kInvalidArgument, "{}: \"{}\" contradicts the content type \"{}\"",
                  at(kPath, "mediaType"), *declared, content_type);
    }
    return *declared;
  }
  if (hint_known) return std::string(content_type);
  bool has_manifests = doc.contains("manifests");
  bool has_config = doc.contains("config") || doc.contains("layers");
  if (has_manifests && !has_config) return std::string(mt::kOciIndex);
  if (has_config && !has_manifests) return std::string(mt::kOciManifest);
  return fail(ErrorCode::kInvalidArgument,
              "{}: cannot tell an index from a manifest: no mediaType and {}", kPath,
              has_manifests ? "both \"manifests\" and \"config\"/\"layers\""
                            : "neither \"manifests\" nor \"config\"/\"layers\"");
}

Result<Manifest> parseManifest(std::string_view bytes, std::string_view media_type_hint) {
  constexpr std::string_view kPath = "manifest";
  FLEETLET_ASSIGN_OR_RETURN(Json doc, parseDocument(bytes, kPath));
  Manifest m;
  FLEETLET_ASSIGN_OR_RETURN(m.media_type,
                            reconcileMediaType(doc, media_type_hint, kPath, &mt::isManifest,
                                               "an image manifest", mt::kOciManifest));
  if (doc.contains("manifests")) {
    return fail(ErrorCode::kInvalidArgument,
                "{}: has \"manifests\": this is an index, not an image manifest", kPath);
  }
  FLEETLET_ASSIGN_OR_RETURN(const Json* config, requireObject(doc, "config", kPath));
  FLEETLET_ASSIGN_OR_RETURN(m.config, parseDescriptor(*config, at(kPath, "config")));
  if (!mt::isConfig(m.config.media_type)) {
    return fail(ErrorCode::kInvalidArgument,
                "{}: \"{}\" is not an image config (is this a container image?)",
                at(kPath, "config.mediaType"), m.config.media_type);
  }
  FLEETLET_ASSIGN_OR_RETURN(const Json* layers, requireArray(doc, "layers", kPath));
  std::string layers_path = at(kPath, "layers");
  for (size_t i = 0; i < layers->size(); ++i) {
    std::string here = at(layers_path, i);
    FLEETLET_ASSIGN_OR_RETURN(Descriptor layer, parseDescriptor((*layers)[i], here));
    if (auto type = mt::classifyLayer(layer.media_type); !type) {
      return std::unexpected(type.error().wrap("{}.mediaType", here));
    }
    m.layers.push_back(std::move(layer));
  }
  FLEETLET_ASSIGN_OR_RETURN(m.annotations, optionalStringMap(doc, "annotations", kPath));
  return m;
}

Result<Index> parseIndex(std::string_view bytes, std::string_view media_type_hint) {
  constexpr std::string_view kPath = "index";
  FLEETLET_ASSIGN_OR_RETURN(Json doc, parseDocument(bytes, kPath));
  Index index;
  FLEETLET_ASSIGN_OR_RETURN(index.media_type,
                            reconcileMediaType(doc, media_type_hint, kPath, &mt::isIndex,
                                               "an image index", mt::kOciIndex));
  if (doc.contains("config") || doc.contains("layers")) {
    return fail(ErrorCode::kInvalidArgument,
                "{}: has \"config\"/\"layers\": this is an image manifest, not an index", kPath);
  }
  FLEETLET_ASSIGN_OR_RETURN(const Json* manifests, requireArray(doc, "manifests", kPath));
  std::string manifests_path = at(kPath, "manifests");
  for (size_t i = 0; i < manifests->size(); ++i) {
    FLEETLET_ASSIGN_OR_RETURN(Descriptor d,
                              parseDescriptor((*manifests)[i], at(manifests_path, i)));
    index.manifests.push_back(std::move(d));
  }
  FLEETLET_ASSIGN_OR_RETURN(index.annotations, optionalStringMap(doc, "annotations", kPath));
  return index;
}

Result<ImageConfig> parseImageConfig(std::string_view bytes) {
  constexpr std::string_view kPath = "config";
  FLEETLET_ASSIGN_OR_RETURN(Json doc, parseJson(bytes, kPath));
  FLEETLET_RETURN_IF_ERROR(requireObjectRoot(doc, kPath));
  ImageConfig c;
  FLEETLET_ASSIGN_OR_RETURN(c.os, requireString(doc, "os", kPath));
  FLEETLET_ASSIGN_OR_RETURN(c.architecture, requireString(doc, "architecture", kPath));
  if (c.os.empty()) return fail(ErrorCode::kInvalidArgument, "{}: must not be empty", "config.os");
  if (c.architecture.empty()) {
    return fail(ErrorCode::kInvalidArgument, "{}: must not be empty", "config.architecture");
  }
  FLEETLET_ASSIGN_OR_RETURN(c.variant, optionalStringOrEmpty(doc, "variant", kPath));
  FLEETLET_ASSIGN_OR_RETURN(c.os_version, optionalStringOrEmpty(doc, "os.version", kPath));

  FLEETLET_ASSIGN_OR_RETURN(const Json* rootfs, requireObject(doc, "rootfs", kPath));
  constexpr std::string_view kRootfsPath = "config.rootfs";
  FLEETLET_ASSIGN_OR_RETURN(std::string type, requireString(*rootfs, "type", kRootfsPath));
  if (type != "layers") {
    return fail(ErrorCode::kInvalidArgument, "config.rootfs.type: expected \"layers\", got \"{}\"",
                type);
  }
  FLEETLET_ASSIGN_OR_RETURN(const Json* diff_ids, requireArray(*rootfs, "diff_ids", kRootfsPath));
  for (size_t i = 0; i < diff_ids->size(); ++i) {
    const Json& item = (*diff_ids)[i];
    std::string here = at("config.rootfs.diff_ids", i);
    if (!item.is_string()) {
      return fail(ErrorCode::kInvalidArgument, "{}: expected a string, got {}", here,
                  jsonTypeName(item));
    }
    std::string diff_id = item.get<std::string>();
    FLEETLET_RETURN_IF_ERROR(validateDigestAt(diff_id, here));
    c.diff_ids.push_back(std::move(diff_id));
  }

  if (const Json* runtime = optionalMember(doc, "config")) {
    constexpr std::string_view kConfigPath = "config.config";
    FLEETLET_RETURN_IF_ERROR(requireObjectRoot(*runtime, kConfigPath));
    FLEETLET_ASSIGN_OR_RETURN(c.env, optionalStringArray(*runtime, "Env", kConfigPath));
    FLEETLET_ASSIGN_OR_RETURN(c.entrypoint,
                              optionalStringArray(*runtime, "Entrypoint", kConfigPath));
    FLEETLET_ASSIGN_OR_RETURN(c.cmd, optionalStringArray(*runtime, "Cmd", kConfigPath));
    FLEETLET_ASSIGN_OR_RETURN(c.working_dir,
                              optionalStringOrEmpty(*runtime, "WorkingDir", kConfigPath));
    FLEETLET_ASSIGN_OR_RETURN(c.user, optionalStringOrEmpty(*runtime, "User", kConfigPath));
    FLEETLET_ASSIGN_OR_RETURN(c.stop_signal,
                              optionalStringOrEmpty(*runtime, "StopSignal", kConfigPath));
    FLEETLET_ASSIGN_OR_RETURN(c.labels, optionalStringMap(*runtime, "Labels", kConfigPath));
  }
  c.raw = std::move(doc);
  return c;
}

Result<Descriptor> selectManifest(const Index& index, const Platform& wanted) {
  const Descriptor* best = nullptr;
  int best_score = 0;
  std::vector<std::string> available;
  for (const Descriptor& d : index.manifests) {
    if (!mt::isManifest(d.media_type)) continue;
    int score = 0;
    if (d.platform) {
      score = platformScore(*d.platform, wanted);
      std::string name = normalize(*d.platform).toString();
      if (std::find(available.begin(), available.end(), name) == available.end()) {
        available.push_back(std::move(name));
      }
    } else {
      score = 1;  // no platform declared: usable, but any declared match is better
    }
    if (score > best_score) {
      best = &d;
      best_score = score;
    }
  }
  if (best != nullptr) return *best;
  return fail(
      ErrorCode::kNotFound, "no image for {} in index; available: {}", normalize(wanted).toString(),
      available.empty() ? std::string("none") : fmt::format("{}", fmt::join(available, ", ")));
}

Status checkLayersMatchConfig(const Manifest& manifest, const ImageConfig& config) {
  if (manifest.layers.size() != config.diff_ids.size()) {
    return fail(ErrorCode::kInvalidArgument,
                "manifest has {} layers but its config lists {} diff_ids", manifest.layers.size(),
                config.diff_ids.size());
  }
  return {};
}

}  // namespace fleetlet::oci
