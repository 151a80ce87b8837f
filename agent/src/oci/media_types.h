#pragma once
// Media types of OCI and Docker image documents and blobs, and what fleetlet makes of them.
//
// Docker schema1 manifests (signed or not) are recognised only to be refused with a clear
// "unsupported" error. Layer compression is reported, not judged: gzip, zstd and plain tar
// are all valid here; a consumer that cannot apply zstd refuses it itself.

#include <cstdint>
#include <string_view>

#include "error/error.h"

namespace fleetlet::oci::media_type {

// OCI image spec.
inline constexpr std::string_view kOciIndex = "application/vnd.oci.image.index.v1+json";
inline constexpr std::string_view kOciManifest = "application/vnd.oci.image.manifest.v1+json";
inline constexpr std::string_view kOciConfig = "application/vnd.oci.image.config.v1+json";
inline constexpr std::string_view kOciLayer = "application/vnd.oci.image.layer.v1.tar";
inline constexpr std::string_view kOciLayerGzip = "application/vnd.oci.image.layer.v1.tar+gzip";
inline constexpr std::string_view kOciLayerZstd = "application/vnd.oci.image.layer.v1.tar+zstd";
inline constexpr std::string_view kOciLayerNondistributable =
    "application/vnd.oci.image.layer.nondistributable.v1.tar";
inline constexpr std::string_view kOciLayerNondistributableGzip =
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip";
inline constexpr std::string_view kOciLayerNondistributableZstd =
    "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd";

// Docker image manifest v2 schema 2.
inline constexpr std::string_view kDockerManifestList =
    "application/vnd.docker.distribution.manifest.list.v2+json";
inline constexpr std::string_view kDockerManifest =
    "application/vnd.docker.distribution.manifest.v2+json";
inline constexpr std::string_view kDockerConfig = "application/vnd.docker.container.image.v1+json";
inline constexpr std::string_view kDockerLayerGzip =
    "application/vnd.docker.image.rootfs.diff.tar.gzip";
inline constexpr std::string_view kDockerForeignLayerGzip =
    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip";

// Docker schema1: refused.
inline constexpr std::string_view kDockerSchema1Manifest =
    "application/vnd.docker.distribution.manifest.v1+json";
inline constexpr std::string_view kDockerSchema1SignedManifest =
    "application/vnd.docker.distribution.manifest.v1+prettyjws";

// The Accept header value for fetching a manifest or index by tag or digest.
inline constexpr std::string_view kManifestAccept =
    "application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, "
    "application/vnd.docker.distribution.manifest.list.v2+json, "
    "application/vnd.docker.distribution.manifest.v2+json";

bool isIndex(std::string_view media_type);     // OCI index or Docker manifest list
bool isManifest(std::string_view media_type);  // OCI manifest or Docker schema2 manifest
bool isConfig(std::string_view media_type);    // OCI or Docker image config
bool isSchema1(std::string_view media_type);

enum class Compression : std::uint8_t { kNone, kGzip, kZstd };

struct LayerType {
  Compression compression = Compression::kNone;
  // Foreign / non-distributable layers: registries may not serve them; fetch from the
  // descriptor's urls instead.
  bool foreign = false;
};

// What a layer media type means; kInvalidArgument "unsupported layer media type \"...\"" for
// anything that is not a known layer type.
Result<LayerType> classifyLayer(std::string_view media_type);

}  // namespace fleetlet::oci::media_type
