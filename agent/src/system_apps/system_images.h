#pragma once
// The system apps' images from OCI image-layout archives (hack/build-images.sh --system), so
// that an air-gapped node needs no registry for them (docs/services.md).

#include <filesystem>
#include <map>
#include <string>

#include "error/error.h"
#include "image/store.h"

namespace fleetlet::system_apps {

// Imports every `*.tar` in `dir` (sorted by name) with image::importArchive: blobs containerd
// has are skipped, so a start with nothing new reads each archive once and writes nothing but
// the image records. Returns image name → target digest of every image imported. A missing
// `dir` gives an empty map; an archive that fails is an error naming it (the others before it
// stay imported).
Result<std::map<std::string, std::string>> importSystemImages(const std::filesystem::path& dir,
                                                              const image::ImageStore& store);

}  // namespace fleetlet::system_apps
